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

    /**
     * One instance keeps its read-back arrays between calls: its decodes and prefills, over a sequence that grows row
     * by row, then over ragged and emptied heads (shorter than the arrays it holds), and from four threads at once,
     * give the bits of a fresh instance per call (which allocates its arrays as every call did before).
     */
    @Test
    void reusedArraysGiveTheBitsOfAFreshInstance() throws Exception {
        java.util.Random rnd = new java.util.Random(5);
        int kvHeads = 2;
        int group = 2;
        int dim = 8;
        ReferenceAttention shared = new ReferenceAttention();
        try (KvStore store = KvStore.open(new KvLayout(1, kvHeads * group, kvHeads, dim, DType.F32, 16));
             Sequence s = store.newSequence()) {
            float[] k = new float[kvHeads * dim];
            float[] v = new float[kvHeads * dim];
            float[] q = new float[kvHeads * group * dim];
            for (int r = 0; r < 200; r++) {
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) rnd.nextGaussian();
                    v[i] = (float) rnd.nextGaussian();
                }
                s.append(0, k, v, r);
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                assertSameBits(fresh(s, q, 1), reused(shared, s, q, 1), "decode at row " + r);
            }
            float[] q3 = new float[3 * q.length];
            for (int i = 0; i < q3.length; i++) {
                q3[i] = (float) rnd.nextGaussian();
            }
            assertSameBits(fresh(s, q3, 3), reused(shared, s, q3, 3), "prefill of 3");
            s.keep(0, 0, new int[] {1, 7, 150});
            s.keep(0, 1, new int[0]);
            assertSameBits(fresh(s, q, 1), reused(shared, s, q, 1), "ragged and emptied heads");
            float[] want = fresh(s, q, 1);
            var pool = java.util.concurrent.Executors.newFixedThreadPool(4);
            try {
                var futures = new java.util.ArrayList<java.util.concurrent.Future<float[]>>();
                for (int t = 0; t < 64; t++) {
                    futures.add(pool.submit(() -> reused(shared, s, q, 1)));
                }
                for (var f : futures) {
                    assertSameBits(want, f.get(), "concurrent decode");
                }
            } finally {
                pool.shutdown();
            }
        }
    }

    private static float[] fresh(Sequence s, float[] q, int n) {
        return reused(new ReferenceAttention(), s, q, n);
    }

    private static float[] reused(ReferenceAttention a, Sequence s, float[] q, int n) {
        float[] out = new float[q.length];
        if (n == 1) {
            a.decode(s, 0, q, out);
        } else {
            a.prefill(s, 0, q, n, out);
        }
        return out;
    }

    private static void assertSameBits(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), what + ", element " + i);
        }
    }

    /**
     * decodeExact's arrangement (the heads of a group scored together, values summed row by row) gives the same
     * bits as the plain one-head, one-sum-at-a-time double loops below, for groups of 1, 3 (no block of four), 4
     * and 6 (a block and a remainder), on ragged heads, one of them emptied.
     */
    @Test
    void exactDecodeIsBitForBitTheOneHeadAtATimeDoubleLoops() {
        java.util.Random rnd = new java.util.Random(11);
        for (int group : new int[] {1, 3, 4, 6}) {
            int kvHeads = 3;
            int dim = 24;
            try (KvStore store = KvStore.open(new KvLayout(2, kvHeads * group, kvHeads, dim, DType.F16, 16));
                 Sequence s = store.newSequence()) {
                float[] k = new float[kvHeads * dim];
                float[] v = new float[kvHeads * dim];
                for (int r = 0; r < 700; r++) {
                    for (int layer = 0; layer < 2; layer++) {
                        for (int i = 0; i < k.length; i++) {
                            k[i] = (float) rnd.nextGaussian() * 2;
                            v[i] = (float) rnd.nextGaussian();
                        }
                        s.append(layer, k, v, r);
                    }
                }
                s.keep(1, 0, new int[] {0, 5, 6, 300, 699});
                s.keep(1, 2, new int[0]);
                float[] q = new float[kvHeads * group * dim];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                for (int layer = 0; layer < 2; layer++) {
                    float[] got = new float[q.length];
                    ReferenceAttention.decodeExact(s, layer, q, got);
                    float[] want = oneHeadAtATime(s, layer, q);
                    for (int i = 0; i < q.length; i++) {
                        assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]),
                                "group " + group + " layer " + layer + " element " + i);
                    }
                }
            }
        }
    }

    /** The straightforward double decode: each head's scores, softmax and each output element's sum in turn. */
    private static float[] oneHeadAtATime(Sequence s, int layer, float[] q) {
        var layout = s.layout();
        int hs = layout.headDim();
        int group = layout.groupSize();
        float[] out = new float[q.length];
        for (int kvh = 0; kvh < layout.kvHeads(); kvh++) {
            int len = s.length(layer, kvh);
            float[] keys = new float[len * hs];
            float[] values = new float[len * hs];
            s.readKeys(layer, kvh, keys);
            s.readValues(layer, kvh, values);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                double[] att = new double[len];
                double max = Double.NEGATIVE_INFINITY;
                for (int r = 0; r < len; r++) {
                    double score = 0;
                    for (int i = 0; i < hs; i++) {
                        score += (double) q[h * hs + i] * keys[r * hs + i];
                    }
                    att[r] = score / Math.sqrt(hs);
                    max = Math.max(max, att[r]);
                }
                double sum = 0;
                for (int r = 0; r < len; r++) {
                    att[r] = Math.exp(att[r] - max);
                    sum += att[r];
                }
                for (int i = 0; i < hs; i++) {
                    double acc = 0;
                    for (int r = 0; r < len; r++) {
                        acc += att[r] * values[r * hs + i];
                    }
                    out[h * hs + i] = len == 0 ? 0f : (float) (acc / sum);
                }
            }
        }
        return out;
    }
}
