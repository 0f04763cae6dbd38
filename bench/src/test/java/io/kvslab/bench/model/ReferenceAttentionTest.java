package io.kvslab.bench.model;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The shared reference attention against hand-computed cases (its own oracle must not be itself). */
class ReferenceAttentionTest {
    @Test
    void oneHeadMatchesAHandComputedCase() {
        // Two rows, dim 2: q = (1, 0) * sqrt(2) so logits are k_x: 0 and ln 3 -> weights 1/4, 3/4.
        float[] keys = {0f, 5f, (float) Math.log(3), -2f};
        float[] values = {4f, 8f, 0f, 4f};
        float s2 = (float) Math.sqrt(2);
        float[] q = {s2, 0f};
        float[] att = new float[2];
        float[] out = new float[2];
        ReferenceAttention.head(q, 0, keys, values, 2, 2, att, out, 0);
        assertEquals(0.25, att[0], 1e-6);
        assertEquals(0.75, att[1], 1e-6);
        assertEquals(1.0, out[0], 1e-5);
        assertEquals(5.0, out[1], 1e-5);
        ReferenceAttention.head(q, 0, keys, values, 0, 2, att, out, 0);
        assertEquals(0f, out[0]);
        assertEquals(0f, out[1]);
    }

    @Test
    void interleavedRowsReadTheirOwnHead() {
        // Rows of two heads interleaved (stride 4): head 1 (offset 2) holds the hand case above, head 0 noise.
        float[] keys = {9f, 9f, 0f, 5f, -9f, 9f, (float) Math.log(3), -2f};
        float[] values = {7f, 7f, 4f, 8f, 7f, 7f, 0f, 4f};
        float[] q = {(float) Math.sqrt(2), 0f};
        float[] out = new float[2];
        ReferenceAttention.head(q, 0, keys, values, 2, 4, 2, 2, new float[2], out, 0);
        assertEquals(1.0, out[0], 1e-5);
        assertEquals(5.0, out[1], 1e-5);
    }

    @Test
    void exactDecodeMatchesTheHandCaseAndStaysCloseToTheFloatLoopsOnALongContext() {
        // The hand case through a store: one layer, one KV head shared by two query heads, head dim 2.
        try (KvStore store = KvStore.open(new KvLayout(1, 2, 1, 2, DType.F32, 16));
             Sequence s = store.newSequence()) {
            s.append(0, new float[] {0f, 5f}, new float[] {4f, 8f}, 0);
            s.append(0, new float[] {(float) Math.log(3), -2f}, new float[] {0f, 4f}, 1);
            float s2 = (float) Math.sqrt(2);
            float[] out = new float[4];
            ReferenceAttention.decodeExact(s, 0, new float[] {s2, 0f, s2, 0f}, out);
            assertEquals(1.0, out[0], 1e-6);
            assertEquals(5.0, out[1], 1e-6);
            assertEquals(1.0, out[2], 1e-6);
            assertEquals(5.0, out[3], 1e-6);
        }
        // 20k rows of O(1) values: the float loops and the double accumulation agree to the float loops' own
        // rounding (a wrong index or scale in either would differ by O(1)).
        int rows = 20_000;
        int dim = 8;
        java.util.Random rnd = new java.util.Random(7);
        try (KvStore store = KvStore.open(new KvLayout(1, 1, 1, dim, DType.F32, 64));
             Sequence s = store.newSequence()) {
            float[] k = new float[dim];
            float[] v = new float[dim];
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < dim; i++) {
                    k[i] = (float) rnd.nextGaussian();
                    v[i] = (float) rnd.nextGaussian();
                }
                s.append(0, k, v, r);
            }
            float[] q = new float[dim];
            for (int i = 0; i < dim; i++) {
                q[i] = (float) rnd.nextGaussian();
            }
            float[] exact = new float[dim];
            float[] loops = new float[dim];
            ReferenceAttention.decodeExact(s, 0, q, exact);
            new ReferenceAttention().decode(s, 0, q, loops);
            for (int i = 0; i < dim; i++) {
                assertEquals(exact[i], loops[i], 2e-3, "element " + i);
            }
        }
    }
}
