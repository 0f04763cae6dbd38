package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import io.kvslab.bench.stress.StructuredKv;

/**
 * The one synthetic Llama-3-8B layer (32 query heads, 8 KV heads, head dim 128, f16, 32 rows per block) that
 * {@link PolicyCostBench} and {@link PrefillBench} compress and attend over, so that their ratios compare the same
 * rows and queries.
 */
final class SyntheticLayer {
    static final KvLayout LAYOUT = new KvLayout(1, 32, 8, 128, DType.F16, 32);
    /** Tokens appended per call while filling (bounds the heap arrays of one chunk). */
    private static final int CHUNK = 4096;

    private SyntheticLayer() {}

    /** Appends {@code context} tokens of {@code gen}'s rows to layer 0 of {@code s}, positions 0 .. context - 1. */
    static void fill(Sequence s, StructuredKv gen, int context) {
        int width = LAYOUT.kvHeads() * LAYOUT.headDim();
        for (int from = 0; from < context; from += CHUNK) {
            int n = Math.min(CHUNK, context - from);
            long[] pos = new long[n];
            for (int i = 0; i < n; i++) {
                pos[i] = from + i;
            }
            float[] k = new float[n * width];
            float[] v = new float[n * width];
            gen.keys(0, 0, pos, k);
            gen.values(0, 0, pos, v);
            s.appendChunk(0, k, v, pos);
        }
    }

    /** One query per token, {@code [token][query head][dim]}, as causal prefill takes them. */
    static float[] queries(StructuredKv gen, int context) {
        int qw = LAYOUT.queryHeads() * LAYOUT.headDim();
        float[] q = new float[Math.multiplyExact(context, qw)];
        float[] one = new float[qw];
        for (int t = 0; t < context; t++) {
            gen.query(0, 0, t, one);
            System.arraycopy(one, 0, q, t * qw, qw);
        }
        return q;
    }
}
