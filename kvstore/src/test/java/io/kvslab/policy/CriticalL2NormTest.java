package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.internal.ffm.OutputProjectionGram;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * CriticalKV with {@link ValueNorm#L2}: the group-mean L2 value norms against a plain-Java reference (explicit
 * {@code v W_o^h} product, L2, mean over the GQA group's query heads), the kept rows against the two stages run on
 * those reference norms, the Gram cache, and the factories (L1 stays the default).
 */
class CriticalL2NormTest {
    private static final int MODEL = 40;
    private static final int QH = 8;
    private static final int KVH = 2;
    private static final int D = 8;
    private static final int N = 300;

    @Test
    void groupMeanOfL2NormsMatchesTheExplicitProduct() {
        Random rnd = new Random(5);
        OutputProjection wo = new OutputProjection(gaussian(rnd, MODEL * QH * D), MODEL);
        LayerContext layer = layer(rnd, wo);
        try (PolicyWorkspace ws = PolicyWorkspace.create()) {
            OutputProjectionGram gram = ws.gram(wo, QH, D);
            for (int h = 0; h < KVH; h++) {
                float[] got = CriticalSelector.groupValueL2Norms(layer.head(h), gram, h, QH / KVH, ws);
                double[] ref = referenceGroupL2(layer.head(h).values(), wo.weights(), h);
                for (int r = 0; r < N; r++) {
                    assertEquals(ref[r], got[r], 1e-4 * ref[r], "head " + h + " row " + r);
                }
            }
        }
    }

    @Test
    void keptRowsAreTheTwoStagesOnTheReferenceNorms() {
        Random rnd = new Random(9);
        OutputProjection wo = new OutputProjection(gaussian(rnd, MODEL * QH * D), MODEL);
        LayerContext layer = layer(rnd, wo);
        float[][] scores = new float[KVH][N];
        boolean[][] prot = new boolean[KVH][N];
        for (int h = 0; h < KVH; h++) {
            for (int r = 0; r < N; r++) {
                scores[h][r] = rnd.nextFloat() * 0.01f;
                prot[h][r] = r >= N - 16;
            }
        }
        int[] budgets = {70, 120};
        try (PolicyWorkspace ws = PolicyWorkspace.create()) {
            int[][] kept = new CriticalSelector(0.5, 1e-4, ValueNorm.L2).select(layer, scores, prot, budgets, ws);
            int[][] l1 = new CriticalSelector(0.5, 1e-4, ValueNorm.L1).select(layer, scores, prot, budgets, ws);
            boolean differs = false;
            for (int h = 0; h < KVH; h++) {
                double[] ref = referenceGroupL2(layer.head(h).values(), wo.weights(), h);
                float[] norms = new float[N];
                for (int r = 0; r < N; r++) {
                    norms[r] = (float) ref[r];
                }
                assertArrayEquals(CriticalSelector.selectHead(scores[h], norms, prot[h], budgets[h], 0.5, 1e-4),
                        kept[h], "head " + h);
                assertEquals(budgets[h], kept[h].length);
                differs |= !java.util.Arrays.equals(kept[h], l1[h]);
            }
            // the norm choice reaches the selection: on random W_o the L1 and L2 rankings differ somewhere
            assertEquals(true, differs, "L1 and L2 kept the same rows on every head");
        }
    }

    @Test
    void gramMatricesAreComputedOncePerWeightsArray() {
        Random rnd = new Random(1);
        OutputProjection wo = new OutputProjection(gaussian(rnd, MODEL * QH * D), MODEL);
        try (PolicyWorkspace ws = PolicyWorkspace.create()) {
            OutputProjectionGram first = ws.gram(wo, QH, D);
            assertSame(first, ws.gram(new OutputProjection(wo.weights(), MODEL), QH, D));
            assertNotSame(first, ws.gram(new OutputProjection(wo.weights().clone(), MODEL), QH, D));
            // the same array seen with another shape is another W_o
            OutputProjectionGram reshaped = ws.gram(new OutputProjection(wo.weights(), MODEL * 2), QH / 2, D);
            assertEquals(MODEL * 2, reshaped.modelDim());
        }
    }

    @Test
    void factoriesAndNames() {
        assertEquals(new CriticalSelector(0.5, 1e-4, ValueNorm.L1), Policies.criticalKv().selector());
        assertEquals(new CriticalSelector(0.5, 1e-4, ValueNorm.L1), Policies.criticalAdaKv().selector());
        assertEquals(new CriticalSelector(0.5, 1e-4, ValueNorm.L2), Policies.criticalKv(ValueNorm.L2).selector());
        assertEquals("criticalkv-l2", Policies.byName("criticalkv-l2").name());
        assertEquals("criticaladakv-l2", Policies.byName("CriticalAdaKV-L2").name());
        assertEquals(new CriticalSelector(0.5, 1e-4, ValueNorm.L2), Policies.byName("criticaladakv-l2").selector());
        assertEquals("criticalkv", Policies.criticalKv(ValueNorm.L1).name());
        for (String name : Policies.L2_VARIANTS) {
            assertEquals(name, Policies.byName(name).name());
        }
        assertThrows(KvArgumentException.class, () -> Policies.criticalSelection(0.5, 1e-4, null));
    }

    /** Mean over KV head h's group of ||W_o^q v||_2, the product written out in double. */
    private static double[] referenceGroupL2(float[] values, float[] wo, int h) {
        int g = QH / KVH;
        double[] mean = new double[N];
        for (int q = h * g; q < (h + 1) * g; q++) {
            for (int t = 0; t < N; t++) {
                double s = 0;
                for (int k = 0; k < MODEL; k++) {
                    double u = 0;
                    for (int j = 0; j < D; j++) {
                        u += (double) values[t * D + j] * wo[k * QH * D + q * D + j];
                    }
                    s += u * u;
                }
                mean[t] += Math.sqrt(s) / g;
            }
        }
        return mean;
    }

    private static LayerContext layer(Random rnd, OutputProjection wo) {
        List<HeadSnapshot> heads = new ArrayList<>();
        for (int h = 0; h < KVH; h++) {
            long[] pos = new long[N];
            for (int r = 0; r < N; r++) {
                pos[r] = r;
            }
            heads.add(new HeadSnapshot(gaussian(rnd, N * D), gaussian(rnd, N * D), pos, D));
        }
        return new LayerContext(0, QH, D, heads, new LayerInputs(null, null, wo.weights()));
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }
}
