package io.kvslab.policy;


import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Protected rows survive every policy at every budget; budgets add up as each method specifies; short prompts. */
class BudgetAndProtectionTest {
    private static final Fixtures.Shape SHAPE = new Fixtures.Shape(4, 4, 2, 8, 16);
    private static final int N = 100;
    private static final int W = 12;
    private static final List<Budget> BUDGETS = List.of(Budget.tokens(1), Budget.fraction(0.1), Budget.fraction(0.25),
            Budget.fraction(0.5), Budget.fraction(0.9), Budget.tokens(N), Budget.tokens(5 * N));
    private PolicyWorkspace kernels;

    @BeforeEach
    void open() {
        kernels = PolicyWorkspace.create();
    }

    @AfterEach
    void close() {
        kernels.close();
    }

    private static CompressionPolicy policy(String name) {
        CompressionPolicy p = Policies.byName(name);
        if (p.scorer() instanceof WindowAttentionScorer w) {
            p = p.withScorer(w.withWindow(W));
        }
        return p;
    }

    /** Rows each policy must protect in a head of n rows: the window (last W) or the 4 sinks. */
    private static boolean isProtected(CompressionPolicy p, int row, int n) {
        Protection pr = p.protection();
        return row < pr.sinks() || row >= n - pr.recent() || (pr.observationWindow() && row >= n - W);
    }

    @Test
    void everyPolicyKeepsItsProtectedRowsAndSpendsItsBudgetExactly() {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 21);
        SequenceContext ctx = data.context();
        for (String name : Policies.NAMES) {
            CompressionPolicy p = policy(name);
            for (Budget b : p.dynamicBudget() ? List.of(Budget.dynamic()) : BUDGETS) {
                Selection s = p.select(ctx, b, kernels);
                long layerTotal;
                for (int l = 0; l < SHAPE.layers(); l++) {
                    layerTotal = 0;
                    for (int h = 0; h < SHAPE.kvHeads(); h++) {
                        int[] kept = s.kept(l, h);
                        boolean[] in = new boolean[N];
                        for (int r : kept) {
                            in[r] = true;
                        }
                        int prot = 0;
                        for (int r = 0; r < N; r++) {
                            if (isProtected(p, r, N)) {
                                prot++;
                                assertTrue(in[r], name + " " + b + ": dropped protected row " + r + " of layer " + l);
                            }
                        }
                        layerTotal += kept.length;
                        if (p.fullLayers().contains(l)) {
                            assertEquals(N, kept.length);
                        } else if (p.layerRule() instanceof UniformLayers && p.headAllocation() instanceof UniformHeads) {
                            // uniform: every head keeps exactly its budget, raised to the protected rows
                            assertEquals(Math.max(prot, b.rowsFor(N)), kept.length, name + " " + b);
                        }
                    }
                    int prot = (int) java.util.stream.IntStream.range(0, N).filter(r -> isProtected(p, r, N)).count();
                    if (p.headAllocation() instanceof AdaKvHeads && !p.fullLayers().contains(l)) {
                        // head-wise: per-head budgets vary, the layer total is the uniform total
                        assertEquals((long) SHAPE.kvHeads() * Math.max(prot, b.rowsFor(N)), layerTotal, name + " " + b);
                    }
                    if (p.layerRule() instanceof PyramidLayers pyr) {
                        // the paper's pyramid, moved by at most layers - 1 rows per head: its integer step rounds
                        // the total off by up to that much, which the balancing gives back or takes away
                        int shaped = Math.max(prot, pyr.layerRows(N, prot, b.rowsFor(N), l, SHAPE.layers()));
                        assertTrue(Math.abs(layerTotal - (long) SHAPE.kvHeads() * shaped)
                                        <= (long) SHAPE.kvHeads() * (SHAPE.layers() - 1),
                                name + " " + b + " layer " + l + ": " + layerTotal + " vs pyramid " + shaped);
                    }
                }
                if (!p.dynamicBudget()) {
                    // every fixed-budget policy spends exactly the uniform total over the sequence
                    int prot = (int) java.util.stream.IntStream.range(0, N).filter(r -> isProtected(p, r, N)).count();
                    assertEquals((long) SHAPE.layers() * SHAPE.kvHeads() * Math.min(N, Math.max(prot, b.rowsFor(N))),
                            s.keptRows(), name + " " + b);
                }
            }
        }
    }

    @Test
    void pyramidLayersSumToTheUniformTotal() {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 22);
        CompressionPolicy p = policy("pyramidkv");
        // per head: budget 40 = 12 window + Bc 28; beta 20: min 1, max 55, step 18 -> 67, 49, 31, 13 (sum 160)
        Selection s = p.select(data.context(), Budget.tokens(40), kernels);
        int[] perLayer = new int[SHAPE.layers()];
        for (int l = 0; l < SHAPE.layers(); l++) {
            perLayer[l] = s.kept(l, 0).length;
            assertEquals(perLayer[l], s.kept(l, 1).length);
        }
        assertArrayEquals(new int[]{67, 49, 31, 13}, perLayer);
        assertEquals(4 * 40, java.util.Arrays.stream(perLayer).sum());
    }

    @Test
    void adaKvGivesEveryHeadAtLeastItsFloor() {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 23);
        for (double alpha : new double[]{0.0, 0.2, 0.5, 1.0}) {
            Selection s = Policies.adaKv(WindowAttentionScorer.authors().withWindow(W), alpha)
                    .select(data.context(), Budget.tokens(40), kernels);
            for (int l = 0; l < SHAPE.layers(); l++) {
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    int floor = W + (int) Math.floor(alpha * (40 - W));
                    assertTrue(s.kept(l, h).length >= floor, "alpha " + alpha + ": " + s.kept(l, h).length);
                }
            }
        }
    }

    @Test
    void shortPromptsAreKeptWhole() {
        // 10 tokens: inside SnapKV's 12-query window; StreamingLLM/DBudgetKV budgets still apply outside the sinks
        Fixtures.Data shortData = Fixtures.Data.random(SHAPE, 10, W, 24);
        for (String name : List.of("snapkv", "adakv", "pyramidkv", "criticalkv", "criticaladakv")) {
            Selection s = policy(name).select(shortData.context(), Budget.fraction(0.1), kernels);
            assertEquals(1.0, s.keptFraction(), name);
        }
        // 5 tokens = 4 sinks + 1 candidate: DBudgetKV keeps everything (spec 4.7 trap 4)
        Fixtures.Data five = Fixtures.Data.random(SHAPE, 5, 5, 25);
        assertEquals(1.0, Policies.dbudgetKv().select(five.context(), Budget.dynamic(), kernels).keptFraction());
        // 3 tokens, fewer than the sinks
        Fixtures.Data three = Fixtures.Data.random(SHAPE, 3, 3, 26);
        assertEquals(1.0, Policies.streamingLlm().select(three.context(), Budget.tokens(1), kernels).keptFraction());
        // an empty head (nothing cached yet) is fine too
        LayerContext l0 = Fixtures.layer(4, 8, new float[][]{new float[0], new float[0]},
                new float[][]{new float[0], new float[0]}, new long[0], null, null);
        assertEquals(0, Policies.knorm().select(new SequenceContext(List.of(l0)), Budget.fraction(0.5), kernels)
                .keptRows());
    }

    @Test
    void zeroValueRowsInTheWindowStayProtectedUnderCriticalKv() {
        // kvpress marks the window with finfo.max and then multiplies by the value norm: a zero value row loses
        // its protection (spec 2.9 trap 1). Here the window's values are all zero and must still be kept.
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 28);
        for (float[][] layer : data.values()) {
            for (float[] head : layer) {
                java.util.Arrays.fill(head, (N - W) * SHAPE.headDim(), N * SHAPE.headDim(), 0f);
            }
        }
        Selection s = policy("criticalkv").select(data.context(), Budget.fraction(0.25), kernels);
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                int[] kept = s.kept(l, h);
                for (int i = 0; i < W; i++) {
                    assertEquals(N - W + i, kept[kept.length - W + i]);
                }
            }
        }
    }

    @Test
    void criticalDbudgetKvKeepsDbudgetKvsCountPerLayerAndCriticalKvsRows() {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 29);
        SequenceContext ctx = data.context();
        int changed = 0;
        for (double threshold : new double[]{0.01, 0.2, 0.5}) {
            LayerBudgetRule stop = Policies.normLossStop(threshold, 1);
            Selection dbudget = Policies.dbudgetKv(stop, Policies.DEFAULT_SINKS, java.util.Set.of(0, 1))
                    .select(ctx, Budget.dynamic(), kernels);
            CompressionPolicy combined = Policies.criticalDbudgetKv(stop, Policies.DEFAULT_SINKS,
                    WindowAttentionScorer.authors().withWindow(W), CriticalSelector.defaults());
            assertTrue(combined.dynamicBudget());
            Selection s = combined.select(ctx, Budget.dynamic(), kernels);
            for (int l = 0; l < SHAPE.layers(); l++) {
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    int count = dbudget.kept(l, h).length;
                    String at = "T " + threshold + " layer " + l + " head " + h;
                    if (l < 2) {
                        assertEquals(N, s.kept(l, h).length, at + ": layers 0 and 1 are kept whole");
                        continue;
                    }
                    // DBudgetKV's count, raised to the protected observation window
                    assertEquals(Math.max(count, W), s.kept(l, h).length, at);
                    // and exactly the rows CriticalKV keeps from this layer at that many rows per head
                    Selection critical = policy("criticalkv").select(ctx, Budget.tokens(Math.max(count, W)), kernels);
                    assertArrayEquals(critical.kept(l, h), s.kept(l, h), at);
                    if (count < N) {
                        changed++;
                    }
                }
            }
        }
        assertTrue(changed > 0, "no threshold made DBudgetKV evict anything: the test would compare nothing");
    }
}
