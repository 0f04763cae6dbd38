package io.kvslab.bench.model;

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
}
