package io.kvslab.policy;


import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Each selection on a case small enough to work out by hand; the expected sets are written out literally. */
class HandComputedSelectionTest {
    private PolicyWorkspace kernels;

    @BeforeEach
    void open() {
        kernels = PolicyWorkspace.create();
    }

    @AfterEach
    void close() {
        kernels.close();
    }

    private static boolean[] mask(int n, int... set) {
        boolean[] m = new boolean[n];
        for (int i : set) {
            m[i] = true;
        }
        return m;
    }

    // ------------------------------------------------------------------ ordering

    @Test
    void ranksByScoreThenLowerPositionAndRejectsNaN() {
        float[] s = {0.5f, 0.7f, 0.5f, -0.0f, 0.0f, 0.7f};
        assertArrayEquals(new int[]{1, 5, 0, 2, 3, 4}, RowOrder.ranked(s, null));
        assertArrayEquals(new int[]{5, 2, 4}, RowOrder.ranked(s, mask(6, 2, 4, 5)));
        assertThrows(KvArgumentException.class, () -> RowOrder.ranked(new float[]{1f, Float.NaN}, null));
    }

    // ------------------------------------------------------------------ StreamingLLM

    @Test
    void streamingLlmKeepsFourSinksAndTheNewestRows() {
        int n = 10;
        LayerContext layer = Fixtures.layer(1, 1, new float[][]{new float[n]}, new float[][]{new float[n]},
                Fixtures.range(n), null, null);
        Selection s = Policies.streamingLlm().select(new SequenceContext(List.of(layer)), Budget.tokens(6), kernels);
        assertArrayEquals(new int[]{0, 1, 2, 3, 8, 9}, s.kept(0, 0));
        // a budget below the sinks keeps the sinks only (protected rows are never dropped)
        Selection tiny = Policies.streamingLlm().select(new SequenceContext(List.of(layer)), Budget.tokens(2), kernels);
        assertArrayEquals(new int[]{0, 1, 2, 3}, tiny.kept(0, 0));
        // 25% of 10 = floor(2.5) = 2 rows -> clamped up to the 4 sinks
        Selection frac = Policies.streamingLlm(1).select(new SequenceContext(List.of(layer)), Budget.fraction(0.5),
                kernels);
        assertArrayEquals(new int[]{0, 6, 7, 8, 9}, frac.kept(0, 0));
    }

    // ------------------------------------------------------------------ Knorm

    @Test
    void knormKeepsTheSmallestKeyNorms() {
        // headDim 2: norms 5, 1, 3, 2 (3-4-5, 1-0, 0-3, 2-0)
        float[] keys = {3, 4, 1, 0, 0, 3, 2, 0};
        LayerContext layer = Fixtures.layer(1, 2, new float[][]{keys}, new float[][]{new float[8]},
                Fixtures.range(4), null, null);
        Selection s = Policies.knorm().select(new SequenceContext(List.of(layer)), Budget.tokens(2), kernels);
        assertArrayEquals(new int[]{1, 3}, s.kept(0, 0));
    }

    // ------------------------------------------------------------------ SnapKV pooling and grouping

    @Test
    void avgPoolCountsZeroPaddingAndMaxPoolIgnoresIt() {
        float[] a = {0.1f, 0.5f, 0.2f, 0.0f, 0.3f};
        WindowAttentionScorer avg = new WindowAttentionScorer(1, WindowPooling.AVG, 3,
                WindowAttentionScorer.PoolOrder.POOL_THEN_GROUP, WindowAttentionScorer.GroupReduce.MEAN);
        float[] p = avg.pool(a);
        float[] expected = {0.6f / 3, 0.8f / 3, 0.7f / 3, 0.5f / 3, 0.3f / 3};
        assertArrayEquals(expected, p, 1e-6f);
        WindowAttentionScorer max = new WindowAttentionScorer(1, WindowPooling.MAX, 3,
                WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL, WindowAttentionScorer.GroupReduce.MEAN);
        assertArrayEquals(new float[]{0.5f, 0.5f, 0.5f, 0.3f, 0.3f}, max.pool(a), 0f);
    }

    @Test
    void poolingOrderMattersForMaxPoolAndTheWindowIsNotPooled() {
        // two query heads over 4 candidate rows + 1 window row
        // head a: [0.4, 0, 0, 0 | 0.6], head b: [0, 0.4, 0, 0 | 0.8]
        float[] mean = {0.4f, 0f, 0f, 0f, 0.6f, 0f, 0.4f, 0f, 0f, 0.8f};
        var max = WindowPooling.MAX;
        var groupMean = WindowAttentionScorer.GroupReduce.MEAN;
        WindowAttentionScorer poolFirst = new WindowAttentionScorer(1, max, 3,
                WindowAttentionScorer.PoolOrder.POOL_THEN_GROUP, groupMean);
        WindowAttentionScorer groupFirst = new WindowAttentionScorer(1, max, 3,
                WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL, groupMean);
        // pool then mean: a -> [0.4, 0.4, 0, 0], b -> [0.4, 0.4, 0.4, 0]; mean -> [0.4, 0.4, 0.2, 0]; window: 0.7
        assertArrayEquals(new float[]{0.4f, 0.4f, 0.2f, 0f, 0.7f}, poolFirst.fromGroupAttention(mean, 2, 5, 4),
                1e-7f);
        // mean then pool: [0.2, 0.2, 0, 0] -> [0.2, 0.2, 0.2, 0]
        assertArrayEquals(new float[]{0.2f, 0.2f, 0.2f, 0f, 0.7f}, groupFirst.fromGroupAttention(mean, 2, 5, 4),
                1e-7f);
        // group max then pool: [0.4, 0.4, 0, 0] -> [0.4, 0.4, 0.4, 0]; window: max(0.6, 0.8)
        WindowAttentionScorer groupMax = new WindowAttentionScorer(1, max, 3,
                WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL, WindowAttentionScorer.GroupReduce.MAX);
        assertArrayEquals(new float[]{0.4f, 0.4f, 0.4f, 0f, 0.8f}, groupMax.fromGroupAttention(mean, 2, 5, 4),
                1e-7f);
        // avg pooling is linear, so it commutes with the group mean
        WindowAttentionScorer avgPoolFirst = new WindowAttentionScorer(1, WindowPooling.AVG, 3,
                WindowAttentionScorer.PoolOrder.POOL_THEN_GROUP, groupMean);
        WindowAttentionScorer avgGroupFirst = new WindowAttentionScorer(1, WindowPooling.AVG, 3,
                WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL, groupMean);
        assertArrayEquals(new float[]{0.4f / 3, 0.4f / 3, 0.2f / 3, 0f, 0.7f},
                avgPoolFirst.fromGroupAttention(mean, 2, 5, 4), 1e-7f);
        assertArrayEquals(avgPoolFirst.fromGroupAttention(mean, 2, 5, 4),
                avgGroupFirst.fromGroupAttention(mean, 2, 5, 4), 1e-7f);
    }

    @Test
    void snapKvTopKFromAHandMadeAttentionRow() {
        // headDim 1, one query head, q = 1: the window query (position 4) gives key j the weight exp(k_j), so keys
        // ln(1, 4, 2, 8, 1) give attention (1, 4, 2, 8, 1) / 16. Row 4 is the window (protected).
        float[] keys = {0f, (float) Math.log(4), (float) Math.log(2), (float) Math.log(8), 0f};
        LayerContext layer = Fixtures.layer(1, 1, new float[][]{keys}, new float[][]{new float[5]},
                Fixtures.range(5), new WindowQueries(new float[]{1f}, new long[]{4}), null);
        SequenceContext ctx = new SequenceContext(List.of(layer));
        var mean = WindowAttentionScorer.GroupReduce.MEAN;
        var order = WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL;
        // no pooling: scores (1, 4, 2, 8)/16 -> rows 3, 1 plus the window
        CompressionPolicy plain = Policies.snapKv(new WindowAttentionScorer(1, WindowPooling.MAX, 1,
                order, mean));
        float[][] s = plain.scorer().score(layer);
        assertArrayEquals(new float[]{1 / 16f, 4 / 16f, 2 / 16f, 8 / 16f, 1 / 16f}, s[0], 1e-6f);
        assertArrayEquals(new int[]{1, 3, 4}, plain.select(ctx, Budget.tokens(3), kernels).kept(0, 0));
        // max-pool 3 over the candidates: (4, 4, 8, 8)/16 -> rows 2 and 3 (the tie goes to the lower position)
        CompressionPolicy pooled = Policies.snapKv(new WindowAttentionScorer(1, WindowPooling.MAX, 3,
                order, mean));
        assertArrayEquals(new int[]{2, 3, 4}, pooled.select(ctx, Budget.tokens(3), kernels).kept(0, 0));
        assertArrayEquals(new int[]{2, 4}, pooled.select(ctx, Budget.tokens(2), kernels).kept(0, 0));
    }

    // ------------------------------------------------------------------ Ada-KV

    @Test
    void adaKvFloorsEachHeadThenSharesTheRestByFlattenedTopK() {
        // 2 heads x 6 rows, nothing protected, nominal 4 each, alpha 0.25: free 4, floor 1 each, R = 6
        float[][] scores = {
                {0.5f, 0.4f, 0.3f, 0.2f, 0.01f, 0.001f},
                {0.01f, 0.005f, 0.004f, 0.6f, 0.003f, 0.002f}};
        boolean[][] prot = {new boolean[6], new boolean[6]};
        LayerContext layer = Fixtures.layer(2, 1, new float[][]{new float[6], new float[6]},
                new float[][]{new float[6], new float[6]}, Fixtures.range(6), null, null);
        int[] budgets = new AdaKvHeads(0.25).allocate(layer, new int[]{4, 4}, scores, prot);
        // floors: h0 row 0 (0.5), h1 row 3 (0.6). Remaining ranked: 0.4 h0, 0.3 h0, 0.2 h0, 0.01 h1r0 (pos 0),
        // 0.01 h0r4 (pos 4), 0.005 h1 -> h0 gets 4, h1 gets 2
        assertArrayEquals(new int[]{5, 3}, budgets);
        int[][] kept = new TopKSelector().select(layer, scores, prot, budgets, kernels);
        assertArrayEquals(new int[]{0, 1, 2, 3, 4}, kept[0]);
        assertArrayEquals(new int[]{0, 1, 3}, kept[1]);
        // alpha 1: every head keeps exactly its nominal budget
        assertArrayEquals(new int[]{4, 4}, new AdaKvHeads(1.0).allocate(layer, new int[]{4, 4}, scores, prot));
        // alpha 0 with row 5 protected: nominal 3 = 1 protected + 2 free per head, R = 4 free rows to the best
        // unprotected scores of the layer: 0.6 h1, 0.5 h0, 0.4 h0, 0.3 h0 -> h0 1 + 3, h1 1 + 1
        boolean[][] prot2 = {mask(6, 5), mask(6, 5)};
        assertArrayEquals(new int[]{4, 2}, new AdaKvHeads(0.0).allocate(layer, new int[]{3, 3}, scores, prot2));
    }

    @Test
    void adaKvBreaksCrossHeadTiesByPositionThenHead() {
        float[][] scores = {{0.3f, 0.2f, 0.2f}, {0.3f, 0.2f, 0.2f}};
        boolean[][] prot = {new boolean[3], new boolean[3]};
        LayerContext layer = Fixtures.layer(2, 1, new float[][]{new float[3], new float[3]},
                new float[][]{new float[3], new float[3]}, Fixtures.range(3), null, null);
        // nominal 2 + 1 = 3 free rows, no floor: 0.3 h0r0, 0.3 h1r0 (same position, lower head first), 0.2 h0r1
        assertArrayEquals(new int[]{2, 1}, new AdaKvHeads(0.0).allocate(layer, new int[]{2, 1}, scores, prot));
    }

    // ------------------------------------------------------------------ PyramidKV

    @Test
    void pyramidBudgetsFallLinearlyAndSumToTheUniformTotal() {
        PyramidLayers p = new PyramidLayers(4);
        // n 100, window 8, budget 40: Bc 32, min 8, max 56, step 12 -> 64, 52, 40, 28, 16 (sum 200 = 5 x 40)
        int[] expected = {64, 52, 40, 28, 16};
        for (int l = 0; l < 5; l++) {
            assertEquals(expected[l], p.layerRows(100, 8, 40, l, 5));
        }
        // n 50: max 56 >= n - w = 42 -> max 42, min 64 - 42 = 22, step 5 -> 50, 45, 40, 35, 30
        int[] clamped = {50, 45, 40, 35, 30};
        for (int l = 0; l < 5; l++) {
            assertEquals(clamped[l], p.layerRows(50, 8, 40, l, 5));
        }
        // one layer, or a budget inside the window: the uniform budget
        assertEquals(40, p.layerRows(100, 8, 40, 0, 1));
        assertEquals(5, p.layerRows(100, 8, 5, 2, 5));
    }

    @Test
    void pyramidLayersOfDifferentLengthsKeepExactlyThePooledTotal() {
        PyramidLayers p = new PyramidLayers(4);
        // one KV head, 5 layers, 8 protected rows each, budget 40 tokens; the pyramid is shaped on the longest layer
        // (100 rows): 64, 52, 40, 28, 16. Steady decoding state (each layer = its share + 6 new rows): unchanged.
        RowCounts steady = counts(new int[] {70, 58, 46, 34, 22}, 8);
        assertArrayEquals(new int[] {64, 52, 40, 28, 16}, p.layerTargets(steady, 0, Budget.tokens(40)));
        // the top layer holds only 10 rows: clamped to 10, total 194 < 5 x 40; the 6 missing rows go to the other
        // layers in proportion to their rows not yet kept (36, 48, 60, 72 of 216): 1, 1.33, 1.67, 2 -> 1, 1, 1, 2,
        // and the last one to the largest remainder (layer 2) -> 65, 53, 42, 30, 10 (sum 200)
        RowCounts shortTop = counts(new int[] {100, 100, 100, 100, 10}, 8);
        assertArrayEquals(new int[] {65, 53, 42, 30, 10}, p.layerTargets(shortTop, 0, Budget.tokens(40)));
        // fewer rows than the budget over all layers: everything is kept
        RowCounts small = counts(new int[] {30, 20, 10, 10, 10}, 8);
        assertArrayEquals(new int[] {30, 20, 10, 10, 10}, p.layerTargets(small, 0, Budget.tokens(40)));
        // the shares split by largest remainder never exceed their room
        assertArrayEquals(new long[] {1, 1, 2, 2, 0}, PyramidLayers.shares(6, new long[] {36, 48, 60, 72, 0}));
        assertArrayEquals(new long[] {3, 0}, PyramidLayers.shares(3, new long[] {3, 0}));
    }

    @Test
    void adaKvPoolsATokenBudgetOverTheLayersHeads() {
        // head 0: 10 rows, head 1: 4 rows, the last 2 of each protected; budget 6 tokens each = 12 in total.
        // Head 1 has only 2 unprotected rows, so head 0 takes the rest of the pooled free budget: 2 + 6 and 2 + 2.
        long[] p10 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        long[] p4 = {0, 1, 2, 3};
        LayerContext layer = new LayerContext(0, 2, 1, List.of(
                new HeadSnapshot(new float[10], new float[10], p10, 1),
                new HeadSnapshot(new float[4], new float[4], p4, 1)), null);
        float[][] scores = {{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0f, 0f}, {0.9f, 0.95f, 0f, 0f}};
        boolean[][] prot = {mask(10, 8, 9), mask(4, 2, 3)};
        int[] nominal = new UniformLayers().rowsPerHead(layer, counts(new int[] {10}, 2), Budget.tokens(6), scores,
                prot, kernels);
        assertArrayEquals(new int[] {6, 6}, nominal);
        assertArrayEquals(new int[] {8, 4}, new AdaKvHeads(0.2).allocate(layer, nominal, scores, prot));
        // a fraction is not pooled beyond each head's own share: 50% -> 5 and 2 (total 7)
        int[] half = new UniformLayers().rowsPerHead(layer, counts(new int[] {10}, 2), Budget.fraction(0.5), scores,
                prot, kernels);
        int[] b = new AdaKvHeads(0.2).allocate(layer, half, scores, prot);
        assertEquals(7, b[0] + b[1]);
    }

    private static RowCounts counts(int[] rowsPerLayer, int protectedRows) {
        int[][] rows = new int[rowsPerLayer.length][];
        int[][] prot = new int[rowsPerLayer.length][];
        for (int l = 0; l < rows.length; l++) {
            rows[l] = new int[] {rowsPerLayer[l]};
            prot[l] = new int[] {Math.min(protectedRows, rowsPerLayer[l])};
        }
        return new RowCounts(rows, prot);
    }

    // ------------------------------------------------------------------ CriticalKV

    @Test
    void criticalKvStageOneByAttentionStageTwoByAttentionTimesValueNorm() {
        // 8 rows, the last 2 protected (window); budget 6 -> free 4, stage 1 keeps 2, stage 2 keeps 2
        float[] s = {0.30f, 0.25f, 0.05f, 0.10f, 0.20f, 0.02f, 0.5f, 0.5f};
        float[] norms = {1f, 1f, 10f, 5f, 0.1f, 100f, 0f, 0f};
        boolean[] prot = mask(8, 6, 7);
        // stage 1: rows 0 (0.30), 1 (0.25). Stage 2 over rows 2..5: (S + 1e-4) x norm = 0.501, 0.5005, 0.02001, 2.01
        //   -> rows 5 and 2. The window rows have zero value norms and are kept anyway (explicit mask).
        assertArrayEquals(new int[]{0, 1, 2, 5, 6, 7}, CriticalSelector.selectHead(s, norms, prot, 6, 0.5, 1e-4));
        // plain SnapKV top-k keeps rows 0, 1, 4, 3 instead
        assertArrayEquals(new int[]{0, 1, 3, 4, 6, 7}, TopKSelector.selectHead(s, prot, 6));
        // alpha 1: stage 1 takes the whole free budget, i.e. SnapKV
        assertArrayEquals(new int[]{0, 1, 3, 4, 6, 7}, CriticalSelector.selectHead(s, norms, prot, 6, 1.0, 1e-4));
        // alpha 0: stage 2 only -> rows 5, 2, 3, 0 (0.3001 x 1 = 0.3001 > 0.25 and > 0.02)
        assertArrayEquals(new int[]{0, 2, 3, 5, 6, 7}, CriticalSelector.selectHead(s, norms, prot, 6, 0.0, 1e-4));
        // eps matters for zero attention: with S = 0 everywhere, eps x norm ranks by norm
        float[] zero = new float[8];
        assertArrayEquals(new int[]{0, 5, 6, 7}, CriticalSelector.selectHead(zero, norms, prot, 4, 0.5, 1e-4));
    }

    @Test
    void criticalKvShortBudgetStillRunsStageOne() {
        // free budget 1: floor(0.5) = 0 would skip stage 1 (kvpress #277); clamped to 1, so the best S wins
        float[] s = {0.30f, 0.05f, 0.5f};
        float[] norms = {1f, 100f, 1f};
        assertEquals(1, CriticalSelector.firstStage(1, 0.5));
        assertEquals(0, CriticalSelector.firstStage(0, 0.5));
        assertEquals(2, CriticalSelector.firstStage(5, 0.5));
        assertArrayEquals(new int[]{0, 2}, CriticalSelector.selectHead(s, norms, mask(3, 2), 2, 0.5, 1e-4));
    }

    // ------------------------------------------------------------------ DBudgetKV

    /** The official code's formula (spec 4.3), literally: reverse cumsum over oldest-first candidates. */
    static int codeCut(double[] candidatesOldestFirst, double t) {
        int c = candidatesOldestFirst.length;
        double base = 0;
        for (double a : candidatesOldestFirst) {
            base += a * a;
        }
        base = Math.sqrt(base);
        int cut = -1;
        for (int i = 0; i < c; i++) {
            double tail = 0;
            for (int j = i; j < c; j++) {
                tail += candidatesOldestFirst[j] * candidatesOldestFirst[j];
            }
            double ratio = (base - Math.sqrt(tail)) / base;
            if (ratio <= t) {
                cut = i;
            }
        }
        return cut;
    }

    @Test
    void dbudgetCutMatchesTheReverseCumsumFormulaOnAHandMadeRow() {
        // candidates oldest first (after 4 sinks): 0.01, 0.02, 0.03, 0.04, 0.10, 0.30; base^2 = 0.103
        // ratio_i: 0, 0.00049, 0.00243, 0.00682, 0.01467, 0.0652
        double[] cand = {0.01, 0.02, 0.03, 0.04, 0.10, 0.30};
        assertEquals(3, codeCut(cand, 0.01));
        assertEquals(4, codeCut(cand, 0.05));
        double[][] newestFirstSquares = {{0.09, 0.01, 0.0016, 0.0009, 0.0004, 0.0001}};
        double[] sinks = {0.3 * 0.3 + 0.1 * 0.1 + 0.05 * 0.05 * 2};
        var ex = NormLossStop.SinkBaseline.EXCLUDED;
        var mean = NormLossStop.HeadAggregation.MEAN_OF_NORMS;
        // T = 1%: keep cand[3:] = 3 candidates; T = 5%: keep 2
        assertEquals(3, NormLossStop.keptCandidates(newestFirstSquares, sinks, 0.01, ex, mean));
        assertEquals(2, NormLossStop.keptCandidates(newestFirstSquares, sinks, 0.05, ex, mean));
        // with the sinks in the baseline (paper Eq. 1) the loss is diluted and fewer candidates are needed:
        // full^2 = 0.103 + 0.105 = 0.208; keeping 1 candidate: 1 - sqrt(0.195)/sqrt(0.208) = 0.0317 > 1%,
        // keeping 2: 1 - sqrt(0.205)/sqrt(0.208) = 0.00724 <= 1%
        assertEquals(2, NormLossStop.keptCandidates(newestFirstSquares, sinks, 0.01,
                NormLossStop.SinkBaseline.INCLUDED, mean));
        // zero attention on the candidates: keep everything (-1)
        assertEquals(-1, NormLossStop.keptCandidates(new double[][]{{0, 0, 0}}, sinks, 0.01, ex, mean));
    }

    @Test
    void dbudgetCutMatchesTheFormulaOnRandomRows() {
        java.util.Random rnd = new java.util.Random(5);
        for (int trial = 0; trial < 200; trial++) {
            int c = 2 + rnd.nextInt(60);
            double[] cand = new double[c];
            for (int i = 0; i < c; i++) {
                cand[i] = Math.pow(rnd.nextDouble(), 3) * (rnd.nextInt(10) == 0 ? 1 : 0.05);
            }
            double[][] squares = new double[1][c];
            for (int i = 0; i < c; i++) {
                squares[0][i] = cand[c - 1 - i] * cand[c - 1 - i];
            }
            for (double t : new double[]{0.001, 0.01, 0.05, 0.2}) {
                int cut = codeCut(cand, t);
                assertEquals(c - cut, NormLossStop.keptCandidates(squares, new double[]{0.5}, t,
                        NormLossStop.SinkBaseline.EXCLUDED, NormLossStop.HeadAggregation.MEAN_OF_NORMS),
                        "trial " + trial + " T " + t);
            }
        }
    }

    @Test
    void dbudgetKvKeepsLayersZeroAndOneAndTheSinksPlusTheNewestSuffix() {
        Fixtures.Data data = Fixtures.Data.random(new Fixtures.Shape(4, 4, 2, 8, 16), 80, 32, 99);
        CompressionPolicy p = Policies.dbudgetKv();
        assertEquals(Set.of(0, 1), p.fullLayers());
        Selection s = p.select(data.context(), Budget.dynamic(), kernels);
        for (int l = 0; l < 4; l++) {
            int kept = s.kept(l, 0).length;
            for (int h = 0; h < 2; h++) {
                int[] rows = s.kept(l, h);
                assertEquals(kept, rows.length, "same cut for every head of a layer");
                if (l < 2) {
                    assertEquals(80, rows.length);
                }
                for (int i = 0; i < rows.length; i++) {
                    int expected = i < 4 ? i : 80 - (rows.length - i);
                    assertEquals(expected, rows[i], "sinks then a contiguous newest suffix");
                }
            }
        }
        assertThrows(KvArgumentException.class, () -> p.select(data.context(), Budget.fraction(0.5), kernels));
        assertThrows(KvArgumentException.class, () -> Policies.snapKv().select(data.context(), Budget.dynamic(),
                kernels));
    }
}
