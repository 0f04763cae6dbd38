package io.kvslab.policy;

import io.kvslab.internal.ffm.OutputProjectionGram;
import io.kvslab.internal.ffm.OutputProjectionWeights;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CriticalKV computes value norms only for stage 2's candidates (rows neither protected nor kept by stage 1), packed
 * into contiguous tiles. Checked against the path that computed every row's norm: each computed norm has the same
 * bits as the whole-head call gives that row (L1 and L2, subsets that move rows to other tile positions, a tile of
 * one row), and every CriticalKV-based policy keeps exactly the same rows at several budgets.
 */
class CriticalNormSubsetTest {

    /** The selector as it was: every row's norm from one whole-head call, then the two stages on them. */
    private record AllRowsCritical(double alpha, double eps, ValueNorm norm) implements Selector {
        @Override
        public boolean needsOutputProjection() {
            return true;
        }

        @Override
        public int[][] select(LayerContext layer, float[][] scores, boolean[][] prot, int[] budgets,
                              PolicyWorkspace ws) {
            OutputProjection wo = layer.outputProjection();
            int[][] kept = new int[layer.kvHeads()][];
            try (OutputProjectionWeights weights = ws.kernels().uploadOutputProjection(wo.weights(), wo.modelDim(),
                    layer.queryHeads(), layer.headDim())) {
                for (int h = 0; h < kept.length; h++) {
                    HeadSnapshot head = layer.head(h);
                    float[] norms = norm == ValueNorm.L1
                            ? CriticalSelector.groupValueNorms(head, weights, h, layer.groupSize(), ws)
                            : CriticalSelector.groupValueL2Norms(head, ws.gram(wo, layer.queryHeads(),
                            layer.headDim()), h, layer.groupSize(), ws);
                    kept[h] = CriticalSelector.selectHead(scores[h], norms, prot[h], budgets[h], alpha, eps);
                }
            }
            return kept;
        }
    }

    @Test
    void subsetNormsHaveTheWholeHeadBits() {
        // Llama-3-8B's per-head geometry (head dim 128, model dim 4096) for one GQA group of 4, 520 rows: two full
        // 256-row tiles and a tail, as the whole-head call tiles them
        checkSubsetBits(new Random(3), 4096, 4, 1, 128, 520);
        // a small geometry with two groups (the second group's heads sit at an offset of W_o)
        checkSubsetBits(new Random(4), 96, 8, 2, 32, 700);
    }

    private static void checkSubsetBits(Random rnd, int model, int qh, int kvh, int d, int n) {
        OutputProjection wo = new OutputProjection(gaussian(rnd, model * qh * d, 1f), model);
        HeadSnapshot[] heads = new HeadSnapshot[kvh];
        for (int h = 0; h < kvh; h++) {
            heads[h] = head(rnd, n, d, 0);
        }
        List<int[]> subsets = new ArrayList<>();
        subsets.add(range(0, n));
        subsets.add(new int[]{n - 1});
        subsets.add(new int[]{0, 255, 256, 257, n - 1});
        subsets.add(range(3, n));                   // every row moves 3 places up its tile
        subsets.add(randomSubset(rnd, n, 0.87));    // the benchmark's candidate fraction
        subsets.add(randomSubset(rnd, n, 0.3));
        int g = qh / kvh;
        try (PolicyWorkspace ws = PolicyWorkspace.create();
             OutputProjectionWeights weights = ws.kernels().uploadOutputProjection(wo.weights(), model, qh, d)) {
            OutputProjectionGram gram = ws.gram(wo, qh, d);
            for (int h = 0; h < kvh; h++) {
                float[] l1 = CriticalSelector.groupValueNorms(heads[h], weights, h, g, ws);
                float[] l2 = CriticalSelector.groupValueL2Norms(heads[h], gram, h, g, ws);
                for (int[] rows : subsets) {
                    float[] s1 = CriticalSelector.groupValueNorms(heads[h], rows, weights, h, g, ws);
                    float[] s2 = CriticalSelector.groupValueL2Norms(heads[h], rows, gram, h, g, ws);
                    assertEquals(rows.length, s1.length);
                    for (int i = 0; i < rows.length; i++) {
                        int r = rows[i];
                        assertTrue(l1[r] > 0 && l2[r] > 0, "row " + r + " has a zero norm");
                        assertEquals(Float.floatToRawIntBits(l1[r]), Float.floatToRawIntBits(s1[i]),
                                "L1, head " + h + ", row " + r + " as entry " + i + " of " + rows.length);
                        assertEquals(Float.floatToRawIntBits(l2[r]), Float.floatToRawIntBits(s2[i]),
                                "L2, head " + h + ", row " + r + " as entry " + i + " of " + rows.length);
                    }
                }
            }
        }
    }

    @Test
    void everyCriticalPolicyKeepsTheSameRowsAsWithAllNorms() {
        Random rnd = new Random(11);
        int qh = 8, kvh = 2, d = 32, model = 64, n = 600, layers = 3;
        OutputProjection wo = new OutputProjection(gaussian(rnd, model * qh * d, 1f), model);
        List<LayerContext> ctx = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            List<HeadSnapshot> heads = new ArrayList<>();
            heads.add(head(rnd, n, d, 0));
            heads.add(head(rnd, n, d, 77));   // ragged: 77 rows already evicted from the second head
            int w = 32;
            long[] qpos = new long[w];
            for (int i = 0; i < w; i++) {
                qpos[i] = n - w + i;
            }
            ctx.add(new LayerContext(l, qh, d, heads,
                    new LayerInputs(gaussian(rnd, w * qh * d, 1f), qpos, wo.weights())));
        }
        SequenceContext context = new SequenceContext(ctx);
        List<CompressionPolicy> policies = List.of(Policies.criticalKv(), Policies.criticalAdaKv(),
                Policies.criticalKv(ValueNorm.L2), Policies.criticalAdaKv(ValueNorm.L2),
                Policies.criticalKv().withPyramidLayers(Policies.DEFAULT_PYRAMID_BETA),
                Policies.criticalAdaKv().withCriticalSelection(0.3, 1e-3, ValueNorm.L1),
                Policies.criticalKv().withCriticalSelection(1.0, 1e-4, ValueNorm.L1),
                Policies.criticalKv().withCriticalSelection(0.0, 0.0, ValueNorm.L1));
        List<Budget> budgets = List.of(Budget.fraction(0.5), Budget.fraction(0.25), Budget.fraction(0.2),
                Budget.fraction(0.1), Budget.tokens(40), Budget.tokens(33), Budget.fraction(0.95));
        int compared = 0;
        try (PolicyWorkspace ws = PolicyWorkspace.create()) {
            for (CompressionPolicy p : policies) {
                CriticalSelector s = (CriticalSelector) p.selector();
                CompressionPolicy old = p.withSelector(new AllRowsCritical(s.alpha(), s.eps(), s.norm()));
                for (Budget b : budgets) {
                    compared += same(p, old, context, b, ws);
                }
            }
            CompressionPolicy dbudget = Policies.criticalDbudgetKv();
            CriticalSelector s = (CriticalSelector) dbudget.selector();
            compared += same(dbudget, dbudget.withSelector(new AllRowsCritical(s.alpha(), s.eps(), s.norm())),
                    context, Budget.dynamic(), ws);
        }
        assertTrue(compared > 200, "only " + compared + " heads lost rows");
    }

    /** Same kept rows for every (layer, head); returns how many heads lost rows (where stage 2 ran). */
    private static int same(CompressionPolicy p, CompressionPolicy old, SequenceContext context, Budget b,
                            PolicyWorkspace ws) {
        Selection got = p.select(context, b, ws);
        Selection want = old.select(context, b, ws);
        int lost = 0;
        for (int l = 0; l < context.layerCount(); l++) {
            for (int h = 0; h < context.layer(l).kvHeads(); h++) {
                assertArrayEquals(want.kept(l, h), got.kept(l, h), p.name() + " " + b + " layer " + l + " head " + h);
                if (!got.keepsAll(l, h)) {
                    lost++;
                }
            }
        }
        return lost;
    }

    /** Rows with per-row scales spread over 0.25-4 (so norms differ), keys at another scale, positions from 0. */
    private static HeadSnapshot head(Random rnd, int n, int d, int dropped) {
        int rows = n - dropped;
        float[] k = gaussian(rnd, rows * d, 0.5f);
        float[] v = new float[rows * d];
        for (int r = 0; r < rows; r++) {
            float scale = (float) Math.pow(2, rnd.nextDouble() * 4 - 2);
            for (int j = 0; j < d; j++) {
                v[r * d + j] = (float) rnd.nextGaussian() * scale;
            }
        }
        int[] keptPositions = dropped == 0 ? range(0, n) : randomPrefixSubset(rnd, n, rows, 32);
        long[] pos = new long[rows];
        for (int r = 0; r < rows; r++) {
            pos[r] = keptPositions[r];
        }
        return new HeadSnapshot(k, v, pos, d);
    }

    /** {@code rows} ascending positions of 0..n-1 that include the last {@code tail}. */
    private static int[] randomPrefixSubset(Random rnd, int n, int rows, int tail) {
        boolean[] in = new boolean[n];
        for (int i = n - tail; i < n; i++) {
            in[i] = true;
        }
        int count = tail;
        while (count < rows) {
            int i = rnd.nextInt(n - tail);
            if (!in[i]) {
                in[i] = true;
                count++;
            }
        }
        return RowOrder.indices(in);
    }

    private static int[] randomSubset(Random rnd, int n, double p) {
        boolean[] in = new boolean[n];
        for (int i = 0; i < n; i++) {
            in[i] = rnd.nextDouble() < p;
        }
        return RowOrder.indices(in);
    }

    private static int[] range(int from, int to) {
        int[] a = new int[to - from];
        for (int i = 0; i < a.length; i++) {
            a[i] = from + i;
        }
        return a;
    }

    private static float[] gaussian(Random rnd, int len, float scale) {
        float[] a = new float[len];
        for (int i = 0; i < len; i++) {
            a[i] = (float) rnd.nextGaussian() * scale;
        }
        return a;
    }
}
