package io.kvslab;

import io.kvslab.KvArgumentException;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sequence-level kernel against a plain-Java reference computed from what the store holds
 * ({@code readKeys}/{@code readValues}), including after ragged eviction and after compaction.
 */
class SequenceAttentionTest {

    /** Reference softmax attention of one query head (double accumulation) over rows [0, visible). */
    static double[] reference(float[] q, int qOff, float[] k, float[] v, int visible, int dim) {
        double scale = 1.0 / Math.sqrt(dim);
        double[] s = new double[visible];
        double max = Double.NEGATIVE_INFINITY;
        for (int r = 0; r < visible; r++) {
            double dot = 0;
            for (int d = 0; d < dim; d++) {
                dot += (double) q[qOff + d] * k[r * dim + d];
            }
            s[r] = dot * scale;
            max = Math.max(max, s[r]);
        }
        double sum = 0;
        double[] o = new double[dim];
        for (int r = 0; r < visible; r++) {
            double p = Math.exp(s[r] - max);
            sum += p;
            for (int d = 0; d < dim; d++) {
                o[d] += p * v[r * dim + d];
            }
        }
        for (int d = 0; d < dim; d++) {
            o[d] = visible == 0 ? 0 : o[d] / sum;
        }
        return o;
    }

    static float[] random(Random rnd, int n, float amp) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextGaussian() * amp);
        }
        return x;
    }

    static void fill(Sequence s, Random rnd, int tokens) {
        KvLayout l = s.layout();
        int width = l.kvHeads() * l.headDim();
        long[] pos = new long[tokens];
        for (int i = 0; i < tokens; i++) {
            pos[i] = i;
        }
        for (int layer = 0; layer < l.layers(); layer++) {
            s.appendChunk(layer, random(rnd, tokens * width, 1f), random(rnd, tokens * width, 1f), pos);
        }
    }

    static double maxDecodeError(Sequence s, Attention att, int layer, Random rnd) {
        KvLayout l = s.layout();
        int dim = l.headDim();
        float[] q = random(rnd, l.queryHeads() * dim, 1f);
        float[] out = new float[q.length];
        att.decode(s, layer, q, out);
        double err = 0;
        for (int h = 0; h < l.kvHeads(); h++) {
            int len = s.length(layer, h);
            float[] k = new float[len * dim];
            float[] v = new float[len * dim];
            s.readKeys(layer, h, k);
            s.readValues(layer, h, v);
            for (int g = 0; g < l.groupSize(); g++) {
                int qh = h * l.groupSize() + g;
                double[] ref = reference(q, qh * dim, k, v, len, dim);
                for (int d = 0; d < dim; d++) {
                    err = Math.max(err, Math.abs(ref[d] - out[qh * dim + d]));
                }
            }
        }
        return err;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void decodeAfterRaggedEvictionMatchesReferenceOverKeptRows(DType dtype) {
        KvLayout layout = new KvLayout(2, 8, 4, 64, dtype, 16);
        Random rnd = new Random(11);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
             Attention att = Attention.create(2)) {
            fill(s, rnd, 700);
            assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "full cache");
            // Ragged per-head eviction: head 0 keeps everything, head 1 a random half, head 2 one row, head 3 none.
            s.keep(1, 1, rnd.ints(0, 700).distinct().limit(350).sorted().toArray());
            s.keep(1, 2, new int[] {699});
            s.keep(1, 3, new int[0]);
            double err = maxDecodeError(s, att, 1, rnd);
            assertTrue(err <= 1e-5, "after eviction: max abs error " + err);
            store.compact();
            err = maxDecodeError(s, att, 1, rnd);
            assertTrue(err <= 1e-5, "after compaction: max abs error " + err);
        }
    }

    @Test
    void prefillIsCausalOverTheChunkJustAppended() {
        KvLayout layout = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        Random rnd = new Random(5);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
             Attention att = Attention.create(2)) {
            int dim = 32;
            int ctx = 37;
            int n = 21;
            fill(s, rnd, ctx + n);     // the last n rows play the chunk just appended
            float[] q = random(rnd, n * layout.queryHeads() * dim, 1f);
            float[] out = new float[q.length];
            att.prefill(s, 0, q, n, out);
            double err = 0;
            for (int h = 0; h < 2; h++) {
                float[] k = new float[(ctx + n) * dim];
                float[] v = new float[(ctx + n) * dim];
                s.readKeys(0, h, k);
                s.readValues(0, h, v);
                for (int i = 0; i < n; i++) {
                    for (int g = 0; g < 2; g++) {
                        int off = (i * layout.queryHeads() + h * 2 + g) * dim;
                        double[] ref = reference(q, off, k, v, ctx + i + 1, dim);
                        for (int d = 0; d < dim; d++) {
                            err = Math.max(err, Math.abs(ref[d] - out[off + d]));
                        }
                    }
                }
            }
            assertTrue(err <= 1e-5, "prefill max abs error " + err);
        }
    }

    @Test
    void badCallsAreRejectedBeforeTheKernel() {
        KvLayout layout = new KvLayout(1, 4, 2, 32, DType.F32, 8);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
             Attention att = Attention.create(1)) {
            fill(s, new Random(1), 5);
            float[] q = new float[4 * 32];
            assertThrows(KvArgumentException.class, () -> att.decode(s, 1, q, new float[q.length]));
            assertThrows(KvArgumentException.class, () -> att.decode(s, 0, new float[3], new float[3]));
            float[] nan = q.clone();
            nan[7] = Float.NaN;
            assertThrows(KvArgumentException.class, () -> att.decode(s, 0, nan, new float[q.length]));
            assertThrows(KvArgumentException.class, () -> att.prefill(s, 0, q, 0, new float[q.length]));
            // more query tokens than rows: rejected by the binding's validation, no crash
            float[] q9 = new float[9 * 4 * 32];
            assertThrows(RuntimeException.class, () -> att.prefill(s, 0, q9, 9, new float[q9.length]));
            assertThrows(KvArgumentException.class, () -> Attention.create(0));
        }
    }

    @Test
    void decodeWithLseMatchesReferenceLogSumExp() {
        KvLayout layout = new KvLayout(1, 2, 1, 16, DType.F32, 4);
        Random rnd = new Random(9);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
             Attention att = Attention.create(1)) {
            fill(s, rnd, 13);
            float[] q = random(rnd, 32, 1f);
            float[] out = new float[32];
            float[] lse = new float[2];
            att.decode(s, 0, q, out, lse);
            float[] k = new float[13 * 16];
            s.readKeys(0, 0, k);
            for (int qh = 0; qh < 2; qh++) {
                double sum = 0;
                for (int r = 0; r < 13; r++) {
                    double dot = 0;
                    for (int d = 0; d < 16; d++) {
                        dot += (double) q[qh * 16 + d] * k[r * 16 + d];
                    }
                    sum += Math.exp(dot / 4.0);
                }
                assertEquals(Math.log(sum), lse[qh], 1e-5);
            }
        }
    }
}
