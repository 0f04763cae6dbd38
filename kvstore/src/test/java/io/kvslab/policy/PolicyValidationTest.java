package io.kvslab.policy;

import io.kvslab.KvArgumentException;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad configurations and inputs fail with a KvArgumentException that says what was wrong. */
class PolicyValidationTest {
    private static void fails(String fragment, Runnable r) {
        KvArgumentException e = assertThrows(KvArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
        assertTrue(e instanceof KvArgumentException);
    }

    @Test
    void parametersOutOfRange() {
        fails("(0, 1]", () -> Budget.fraction(0));
        fails("(0, 1]", () -> Budget.fraction(1.5));
        fails(">= 1", () -> Budget.tokens(0));
        fails("no fixed row count", () -> Budget.dynamic().rowsFor(10));
        fails("odd", () -> new WindowAttentionScorer(32, WindowPooling.MAX, 4,
                WindowAttentionScorer.PoolOrder.GROUP_THEN_POOL, WindowAttentionScorer.GroupReduce.MEAN));
        fails(">= 1 query", () -> WindowAttentionScorer.authors().withWindow(0));
        fails("[0, 1]", () -> new AdaKvHeads(1.2));
        fails("[0, 1]", () -> new CriticalSelector(-0.1, 1e-4));
        fails("eps", () -> new CriticalSelector(0.5, Double.NaN));
        fails("beta", () -> new PyramidLayers(0));
        fails("threshold", () -> new NormLossStop(1.0, 1, NormLossStop.SinkBaseline.EXCLUDED,
                NormLossStop.HeadAggregation.MEAN_OF_NORMS));
        fails(">= 0", () -> new Protection(-1, 0, false));
        fails("unknown policy 'h2o'", () -> Policies.byName("h2o"));
        fails("full layers", () -> Policies.knorm().withFullLayers(Set.of(-1)));
        assertEquals("criticaladakv", Policies.byName("Critical-AdaKV").name());
    }

    @Test
    void inputsWithInconsistentShapes() {
        fails("strictly ascending", () -> new HeadSnapshot(new float[4], new float[4], new long[]{1, 1}, 2));
        fails("needs keys and values", () -> new HeadSnapshot(new float[3], new float[4], new long[]{1, 2}, 2));
        fails("strictly ascending", () -> LayerInputs.window(new float[4], new long[]{5, 4}));
        fails("at least one query", () -> LayerInputs.window(new float[0], new long[0]));
        fails("together", () -> new LayerInputs(new float[4], null, null));
        fails("at least one row", () -> new LayerInputs(null, null, new float[0]));
        HeadSnapshot h = new HeadSnapshot(new float[4], new float[4], new long[]{0, 1}, 2);
        fails("shared evenly", () -> new LayerContext(0, 3, 2, List.of(h, h), null));
        fails("queryHeads * headDim", () -> new LayerContext(0, 2, 2, List.of(h, h),
                LayerInputs.window(new float[3], new long[]{1})));
        fails("columns", () -> new LayerContext(0, 2, 2, List.of(h, h), new LayerInputs(null, null, new float[10])));
        LayerContext l0 = new LayerContext(0, 2, 2, List.of(h, h), null);
        LayerContext l2 = new LayerContext(2, 2, 2, List.of(h, h), LayerInputs.none());
        fails("layer order", () -> new SequenceContext(List.of(l0, l2)));
        fails("must not contain null (KV head 1)", () -> new LayerContext(0, 2, 2, java.util.Arrays.asList(h, null),
                null));
        fails("must not contain null (position 0)", () -> new SequenceContext(java.util.Arrays.asList(null, l0)));
        try (Compressor c = new Compressor()) {   // the public entry checks the list the same way
            fails("layer order", () -> Policies.knorm().select(List.of(l0, l2), Budget.fraction(0.5), c));
            fails("at least one layer", () -> Policies.knorm().select(List.of(), Budget.fraction(0.5), c));
            assertArrayEquals(Policies.knorm().select(new SequenceContext(List.of(l0)), Budget.tokens(1), c.workspace())
                    .kept()[0], Policies.knorm().select(List.of(l0), Budget.tokens(1), c).kept()[0]);
        }
        fails("strictly ascending", () -> new Selection(new int[][][]{{{1, 0}}}, new int[][]{{2}}));
    }

    @Test
    void missingInputsAndWrongBudgetKinds() {
        HeadSnapshot h = new HeadSnapshot(new float[40], new float[40], Fixtures.range(20), 2);
        SequenceContext noWindow = new SequenceContext(List.of(new LayerContext(0, 2, 2, List.of(h, h), null)));
        try (PolicyWorkspace k = PolicyWorkspace.create()) {
            fails("observation-window", () -> Policies.snapKv().select(noWindow, Budget.fraction(0.5), k));
            fails("DBudgetKV", () -> Policies.dbudgetKv().withFullLayers(Set.of())
                    .select(noWindow, Budget.dynamic(), k));
            SequenceContext noWo = new SequenceContext(List.of(new LayerContext(0, 2, 2, List.of(h, h),
                    LayerInputs.window(new float[4], new long[]{19}))));
            fails("needs W_o", () -> Policies.criticalKv().select(noWo, Budget.fraction(0.5), k));
            fails("Budget.dynamic()", () -> Policies.dbudgetKv().select(noWo, Budget.tokens(5), k));
            fails("fixed budget", () -> Policies.knorm().select(noWo, Budget.dynamic(), k));
            // Knorm needs neither window nor W_o
            assertEquals(20, Policies.knorm().select(noWindow, Budget.tokens(10), k).keptRows());
        }
    }

    @Test
    void aSelectorThatDropsProtectedRowsIsCaught() {
        HeadSnapshot h = new HeadSnapshot(new float[40], new float[40], Fixtures.range(20), 2);
        SequenceContext ctx = new SequenceContext(List.of(new LayerContext(0, 1, 2, List.of(h), null)));
        Selector careless = (layer, scores, prot, budgets, kernels) -> new int[][]{{10, 11}};
        try (PolicyWorkspace k = PolicyWorkspace.create()) {
            fails("dropped protected row 0", () -> Policies.streamingLlm().withSelector(careless)
                    .select(ctx, Budget.tokens(6), k));
        }
    }
}
