package io.kvslab.pod;

import io.kvslab.Attention;

import io.kvslab.KvArgumentException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PoD attention equals dense softmax attention over the concatenated key list [own keys of proximal tokens ; base
 * layer keys of distant tokens] with the layer's own values (research/algorithms.md 3.3 and 8b), computed here in
 * plain Java from the generated rows, independently of the store: v2 through the ordinary kernel over an aliased
 * table, v2 and v1 through the two-part path merged by log-sum-exp.
 */
class PodAttentionTest {
    private static final int LAYERS = 3;
    private static final int QUERY_HEADS = 4;
    private static final int KV_HEADS = 2;
    private static final int DIM = 16;
    private static final int TPB = 4;
    private static final int SINKS = 2;
    private static final int RECENT = 5;
    /** [kvHead][layer]: KV head 0 shares layer 0's keys in all layers, KV head 1 has groups {0} and {1, 2}. */
    private static final int[][] BASE = {{0, 0, 0}, {0, 1, 1}};
    private static final double TOLERANCE = 1e-5;

    /** Generated rows [layer][position][kvHead * DIM] and queries [layer][queryHeads * DIM]. */
    private record Rows(float[][][] k, float[][][] v, float[][] q) {
    }

    private static float round(DType dt, float x) {
        return dt == DType.F16 ? Float.float16ToFloat(Float.floatToFloat16(x)) : x;
    }

    private static Rows rows(DType dt, int tokens, long seed) {
        Random rnd = new Random(seed);
        float[][][] k = new float[LAYERS][tokens][KV_HEADS * DIM];
        float[][][] v = new float[LAYERS][tokens][KV_HEADS * DIM];
        float[][] q = new float[LAYERS][QUERY_HEADS * DIM];
        for (int l = 0; l < LAYERS; l++) {
            for (int p = 0; p < tokens; p++) {
                for (int i = 0; i < KV_HEADS * DIM; i++) {
                    // values representable in the dtype, so the store holds them exactly
                    k[l][p][i] = round(dt, (float) rnd.nextGaussian());
                    v[l][p][i] = round(dt, (float) rnd.nextGaussian());
                }
                if (dt.isQuantized()) {
                    // rows already on the dtype's grid (requantising them reproduces them up to float rounding)
                    k[l][p] = io.kvslab.testing.StoredValues.of(dt, k[l][p], DIM);
                    v[l][p] = io.kvslab.testing.StoredValues.of(dt, v[l][p], DIM);
                }
            }
            for (int i = 0; i < q.length; i++) {
                q[l][i] = (float) (rnd.nextGaussian() * 1.5);
            }
        }
        return new Rows(k, v, q);
    }

    private static Sequence filled(KvStore store, Rows r, int tokens) {
        Sequence s = store.newSequence();
        for (int p = 0; p < tokens; p++) {
            for (int l = 0; l < LAYERS; l++) {
                s.append(l, r.k[l][p], r.v[l][p], p);
            }
        }
        return s;
    }

    /** Demotes every non-base (layer, KV head) for a query at t. */
    private static void demote(Sequence s, long t) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < KV_HEADS; h++) {
                if (BASE[h][l] != l) {
                    s.shareDistantKeys(l, h, BASE[h][l], SINKS, RECENT, t);
                }
            }
        }
    }

    /** Whether position p (= row) lies in a full block all of whose positions are distant for a query at t. */
    private static boolean distantBlock(int p, int tokens, long t) {
        int b = p / TPB;
        int first = b * TPB;
        int last = first + TPB - 1;
        return last < tokens && first >= SINKS && last <= t - RECENT;
    }

    /**
     * Dense reference in double: one softmax over all positions; for positions of distant blocks the key is the
     * base layer's and (v1) the score uses the base layer's query; values are always layer l's.
     */
    private static float[] reference(Rows r, int layer, int tokens, long t, boolean v1) {
        float[] out = new float[QUERY_HEADS * DIM];
        int group = QUERY_HEADS / KV_HEADS;
        double scale = 1 / Math.sqrt(DIM);
        for (int qh = 0; qh < QUERY_HEADS; qh++) {
            int h = qh / group;
            int base = BASE[h][layer];
            double[] s = new double[tokens];
            double max = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < tokens; p++) {
                boolean distant = distantBlock(p, tokens, t);
                float[] key = r.k[distant ? base : layer][p];
                float[] q = r.q[distant && v1 ? base : layer];
                double dot = 0;
                for (int d = 0; d < DIM; d++) {
                    dot += (double) q[qh * DIM + d] * key[h * DIM + d];
                }
                s[p] = dot * scale;
                max = Math.max(max, s[p]);
            }
            double sum = 0;
            double[] o = new double[DIM];
            for (int p = 0; p < tokens; p++) {
                double w = Math.exp(s[p] - max);
                sum += w;
                for (int d = 0; d < DIM; d++) {
                    o[d] += w * r.v[layer][p][h * DIM + d];
                }
            }
            for (int d = 0; d < DIM; d++) {
                out[qh * DIM + d] = (float) (o[d] / sum);
            }
        }
        return out;
    }

    /** The v1 queries for the aliased blocks of a layer: each KV head's query heads from its base layer. */
    private static float[] baseQueries(Rows r, int layer) {
        float[] q = new float[QUERY_HEADS * DIM];
        int group = QUERY_HEADS / KV_HEADS;
        for (int h = 0; h < KV_HEADS; h++) {
            System.arraycopy(r.q[BASE[h][layer]], h * group * DIM, q, h * group * DIM, group * DIM);
        }
        return q;
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "Q8_0", "Q4_0"})
    void sharedKeysEqualDenseAttentionOverConcatenatedKeys(DType dtype) {
        int tokens = 38;   // 9 full blocks and a partial tail of 2 rows
        long t = tokens - 1;
        Rows r = rows(dtype, tokens, 42);
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, dtype, TPB);
        try (KvStore store = KvStore.open(layout); Sequence s = filled(store, r, tokens);
             Attention attention = Attention.create(2); PodAttention pod = PodAttention.create(2)) {
            long before = store.stats().liveBytes();
            demote(s, t);
            // blocks 1..7 are wholly in [2, 32]: 7 per non-base (layer, head), 3 such tables
            assertEquals(before - 3 * 7 * layout.blockBytes(), store.stats().liveBytes());
            for (int l = 0; l < LAYERS; l++) {
                float[] v2 = reference(r, l, tokens, t, false);
                float[] v1 = reference(r, l, tokens, t, true);
                float[] out = new float[QUERY_HEADS * DIM];
                attention.decode(s, l, r.q[l], out);
                assertTrue(maxDiff(v2, out) <= TOLERANCE, "v2, ordinary kernel, layer " + l + ": " + maxDiff(v2, out));
                pod.decode(s, l, r.q[l], out);
                assertTrue(maxDiff(v2, out) <= TOLERANCE, "v2, two parts, layer " + l + ": " + maxDiff(v2, out));
                pod.decode(s, l, r.q[l], baseQueries(r, l), out);
                assertTrue(maxDiff(v1, out) <= TOLERANCE, "v1, two parts, layer " + l + ": " + maxDiff(v1, out));
                if (l > 0) {
                    assertTrue(maxDiff(v1, v2) > 1e-3, "v1 and v2 are different models in layer " + l);
                }
            }
        }
    }

    @Test
    void decodingStepByStepWithCompactionInBetween() {
        int total = 45;
        Rows r = rows(DType.F32, total, 7);
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, DType.F32, TPB);
        try (KvStore store = KvStore.open(layout, new StoreConfig(Long.MAX_VALUE, 16 * layout.blockBytes()));
             Sequence s = store.newSequence(); Attention attention = Attention.create(1);
             PodAttention pod = PodAttention.create(1)) {
            Sequence other = store.newSequence();   // interleaved blocks, closed later to leave holes
            for (int p = 0; p < 20; p++) {
                for (int l = 0; l < LAYERS; l++) {
                    s.append(l, r.k[l][p], r.v[l][p], p);
                    other.append(l, r.k[l][p], r.v[l][p], p);
                }
            }
            for (int p = 20; p < total; p++) {
                for (int l = 0; l < LAYERS; l++) {
                    s.append(l, r.k[l][p], r.v[l][p], p);
                }
                demote(s, p);
                if (p == 30) {
                    other.close();
                    assertTrue(store.compact().blocksMoved() > 0);
                }
                int tokens = p + 1;
                for (int l = 0; l < LAYERS; l++) {
                    float[] out = new float[QUERY_HEADS * DIM];
                    attention.decode(s, l, r.q[l], out);
                    assertTrue(maxDiff(reference(r, l, tokens, p, false), out) <= TOLERANCE, "v2 at " + p);
                    pod.decode(s, l, r.q[l], baseQueries(r, l), out);
                    assertTrue(maxDiff(reference(r, l, tokens, p, true), out) <= TOLERANCE, "v1 at " + p);
                }
            }
        }
    }

    /** The library's PoD decode step (append, demote, v1/v2 attention) against the same independent reference. */
    @ParameterizedTest
    @EnumSource(PodVariant.class)
    void podDecoderStepsEqualTheIndependentReference(PodVariant variant) {
        int prompt = 20;
        int total = 45;
        Rows r = rows(DType.F32, total, 13);
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, DType.F32, TPB);
        ModelFingerprint model = new ModelFingerprint("test", LAYERS, QUERY_HEADS, KV_HEADS, DIM);
        LayerGrouping grouping = new LayerGrouping(model, Double.NaN, BASE);
        PodSharing sharing = new PodSharing(grouping, new PodConfig(SINKS, RECENT, variant), layout);
        boolean v1 = variant == PodVariant.V1_SHARED_SCORES;
        try (KvStore store = KvStore.open(layout); Sequence s = filled(store, r, prompt);
             PodDecoder pod = PodDecoder.create(s, sharing, 1)) {
            float[] out = new float[QUERY_HEADS * DIM];
            // before sharing: ordinary attention over the layer's own rows
            for (int l = 0; l < LAYERS; l++) {
                pod.decode(l, r.q[l], r.k[l][prompt], r.v[l][prompt], prompt, out);
                assertTrue(maxDiff(reference(r, l, prompt + 1, -1, v1), out) <= TOLERANCE, "dense, layer " + l);
            }
            pod.startSharing(prompt + 1);
            for (int p = prompt + 1; p < total; p++) {
                for (int l = 0; l < LAYERS; l++) {
                    pod.decode(l, r.q[l], r.k[l][p], r.v[l][p], p, out);
                    double err = maxDiff(reference(r, l, p + 1, p, v1), out);
                    assertTrue(err <= TOLERANCE, variant + " at " + p + " layer " + l + ": " + err);
                }
            }
            assertTrue(pod.freedBlocks() > 0);
            long dense = 2L * LAYERS * KV_HEADS * ((total + TPB - 1) / TPB);
            assertEquals((dense - pod.freedBlocks()) * layout.blockBytes(), store.stats().liveBytes(),
                    "every demoted key block's own copy is freed");
            // v1 runs token by token; v2 takes chunks
            if (v1) {
                assertThrows(KvArgumentException.class, () -> pod.demoteForChunk(1, total));
            } else {
                assertEquals(0, pod.demoteForChunk(1, total - 1));
            }
            assertThrows(KvArgumentException.class, () -> pod.prepare(LAYERS, r.q[0], total));
            assertThrows(KvArgumentException.class, () -> pod.prepare(0, new float[3], total));
            // a decode step refused for its q, out or layer stores nothing: the same step can then run
            long live = store.stats().liveBytes();
            int rows = s.length(0, 0);
            float[] k = r.k[0][prompt];
            float[] v = r.v[0][prompt];
            assertThrows(KvArgumentException.class, () -> pod.decode(0, new float[3], k, v, total, out));
            assertThrows(KvArgumentException.class, () -> pod.decode(0, r.q[0], k, v, total, new float[3]));
            assertThrows(KvArgumentException.class, () -> pod.decode(0, r.q[0], k, v, total, null));
            assertThrows(KvArgumentException.class, () -> pod.decode(LAYERS, r.q[0], k, v, total, out));
            assertEquals(rows, s.length(0, 0));
            assertEquals(live, store.stats().liveBytes());
            pod.decode(0, r.q[0], k, v, total, out);
            assertEquals(rows + 1, s.length(0, 0));
        }
    }

    @Test
    void withoutDistantBlocksPodAttentionIsOrdinaryAttention() {
        int tokens = 9;   // t - RECENT = 3 < first full block after the sinks
        Rows r = rows(DType.F32, tokens, 3);
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, DType.F32, TPB);
        try (KvStore store = KvStore.open(layout); Sequence s = filled(store, r, tokens);
             Attention attention = Attention.create(1); PodAttention pod = PodAttention.create(1)) {
            long live = store.stats().liveBytes();
            demote(s, tokens - 1);
            assertEquals(live, store.stats().liveBytes());
            for (int l = 0; l < LAYERS; l++) {
                float[] a = new float[QUERY_HEADS * DIM];
                float[] b = new float[QUERY_HEADS * DIM];
                attention.decode(s, l, r.q[l], a);
                pod.decode(s, l, r.q[l], baseQueries(r, l), b);
                assertTrue(maxDiff(a, b) <= TOLERANCE);
                assertTrue(maxDiff(reference(r, l, tokens, tokens - 1, true), b) <= TOLERANCE);
            }
        }
    }

    @Test
    void lseMergeEqualsOneSoftmaxOverBothParts() {
        // 8b: g * softmax(aP) VP + (1 - g) * softmax(aD) VD == softmax([aP, aD]) [VP; VD]
        Random rnd = new Random(11);
        int heads = 3;
        int dim = 5;
        int np = 7;
        int nd = 9;
        float[] outP = new float[heads * dim];
        float[] outD = new float[heads * dim];
        float[] lseP = new float[heads];
        float[] lseD = new float[heads];
        float[] joint = new float[heads * dim];
        for (int h = 0; h < heads; h++) {
            double[] a = new double[np + nd];
            double[][] v = new double[np + nd][dim];
            for (int i = 0; i < a.length; i++) {
                a[i] = rnd.nextGaussian() * 4 + (i < np ? 30 : 0);   // large scores: the merge must not overflow
                for (int d = 0; d < dim; d++) {
                    v[i][d] = rnd.nextGaussian();
                }
            }
            partial(a, v, 0, np, outP, h * dim, lseP, h);
            partial(a, v, np, np + nd, outD, h * dim, lseD, h);
            partial(a, v, 0, np + nd, joint, h * dim, new float[heads], h);
        }
        float[] merged = new float[heads * dim];
        LseMerge.merge(outP, lseP, outD, lseD, dim, merged);
        assertTrue(maxDiff(joint, merged) <= 1e-6, "max diff " + maxDiff(joint, merged));
    }

    /** Plain softmax attention of scores a[from..to) over values v into out[o..o+dim), its LSE into lse[h]. */
    private static void partial(double[] a, double[][] v, int from, int to, float[] out, int o, float[] lse, int h) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = from; i < to; i++) {
            max = Math.max(max, a[i]);
        }
        double sum = 0;
        double[] acc = new double[out.length];
        for (int i = from; i < to; i++) {
            double w = Math.exp(a[i] - max);
            sum += w;
            for (int d = 0; d < v[i].length; d++) {
                acc[d] += w * v[i][d];
            }
        }
        for (int d = 0; d < v[from].length; d++) {
            out[o + d] = (float) (acc[d] / sum);
        }
        lse[h] = (float) (max + Math.log(sum));
    }

    @Test
    void lseMergeHandCases() {
        // one key each: scores ln 3 and 0 -> g = 3 / (3 + 1) = 0.75
        float[] merged = new float[2];
        LseMerge.merge(new float[] {1, 0}, new float[] {(float) Math.log(3)}, new float[] {0, 1}, new float[] {0f},
                2, merged);
        assertArrayEquals(new float[] {0.75f, 0.25f}, merged, 1e-6f);
        // an empty part contributes nothing; two empty parts give zeros
        LseMerge.merge(new float[] {0, 0}, new float[] {Float.NEGATIVE_INFINITY}, new float[] {2, 3},
                new float[] {5f}, 2, merged);
        assertArrayEquals(new float[] {2, 3}, merged);
        LseMerge.merge(new float[] {0, 0}, new float[] {Float.NEGATIVE_INFINITY}, new float[] {0, 0},
                new float[] {Float.NEGATIVE_INFINITY}, 2, merged);
        assertArrayEquals(new float[] {0, 0}, merged);
        assertThrows(KvArgumentException.class, () -> LseMerge.merge(new float[2], new float[] {Float.NaN},
                new float[2], new float[1], 2, new float[2]));
        assertThrows(KvArgumentException.class, () -> LseMerge.merge(new float[2], new float[1], new float[3],
                new float[1], 2, new float[2]));
    }

    @Test
    void decodeAfterSequenceCloseIsAClosedExceptionAndTheStoreIsUntouched() {
        // moved from reliability.LifetimeTest when PodAttention became package-private (PodDecoder runs it)
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, DType.F32, TPB);
        Rows r = rows(DType.F32, 8, 1);
        try (KvStore store = KvStore.open(layout); PodAttention pod = PodAttention.create(1)) {
            Sequence s = filled(store, r, 8);
            Sequence other = filled(store, r, 8);
            s.close();
            float[] out = new float[QUERY_HEADS * DIM];
            assertThrows(io.kvslab.ClosedException.class, () -> pod.decode(s, 0, r.q[0], out));
            float[] expected = new float[out.length];
            try (Attention attention = Attention.create(1)) {
                attention.decode(other, 0, r.q[0], expected);
            }
            pod.decode(other, 0, r.q[0], out);   // v2 through the two-part path equals ordinary attention
            for (int i = 0; i < out.length; i++) {
                assertEquals(expected[i], out[i], TOLERANCE, "the other sequence reads its own rows, element " + i);
            }
            other.close();
            assertEquals(0, store.stats().liveBlocks());
        }
    }

    @Test
    void badQueriesAreRejectedBeforeTheKernel() {
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, DIM, DType.F32, TPB);
        Rows r = rows(DType.F32, 8, 1);
        try (KvStore store = KvStore.open(layout); Sequence s = filled(store, r, 8);
             PodAttention pod = PodAttention.create(1)) {
            float[] out = new float[QUERY_HEADS * DIM];
            assertThrows(KvArgumentException.class, () -> pod.decode(s, 0, r.q[0], new float[3], out));
            float[] nan = r.q[1].clone();
            nan[5] = Float.NaN;
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> pod.decode(s, 1, r.q[1], nan, out));
            assertTrue(e.getMessage().contains("qDistant[5]"), e.getMessage());
            assertThrows(KvArgumentException.class, () -> pod.decode(s, LAYERS, r.q[0], out));
            assertThrows(KvArgumentException.class, () -> PodAttention.create(0));
        }
    }
}
