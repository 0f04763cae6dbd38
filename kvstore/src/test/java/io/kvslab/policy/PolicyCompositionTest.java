package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layer rule, head allocation and selector are package-private; a caller composes them through
 * {@link CompressionPolicy}'s {@code with...} methods. Each published method rebuilt that way from a simpler one has
 * the same steps (compared with the package-private factories the published methods use) and selects the same rows
 * on the same data; and each "undo" method brings back the simpler policy's selection.
 */
class PolicyCompositionTest {
    private static final Fixtures.Data DATA = Fixtures.Data.random(Fixtures.Shape.small(), 70, 32, 11);

    @Test
    void publishedMethodsRebuiltWithTheWithMethodsHaveTheSameSteps() {
        CompressionPolicy snap = Policies.snapKv();
        assertSameSteps(Policies.adaKv(), snap.withAdaKvHeads(Policies.DEFAULT_ADA_ALPHA));
        assertSameSteps(Policies.pyramidKv(), snap.withPyramidLayers(Policies.DEFAULT_PYRAMID_BETA));
        assertSameSteps(Policies.criticalKv(), snap.withCriticalSelection(0.5, 1e-4, ValueNorm.L1));
        assertSameSteps(Policies.criticalKv(ValueNorm.L2), snap.withCriticalSelection(0.5, 1e-4, ValueNorm.L2));
        assertSameSteps(Policies.criticalAdaKv(),
                snap.withAdaKvHeads(0.2).withCriticalSelection(0.5, 1e-4, ValueNorm.L1));
        // DBudgetKV's stop with other settings, directly and through the CriticalKV combination (which keeps its
        // sinks): the same as the package-private overloads taking the stop rule
        LayerBudgetRule stop = Policies.normLossStop(0.05, 2);
        assertSameSteps(Policies.dbudgetKv(stop, Policies.DEFAULT_SINKS, Set.of(0, 1)),
                Policies.dbudgetKv().withNormLossStop(0.05, 2));
        assertSameSteps(Policies.criticalDbudgetKv(stop, Policies.DEFAULT_SINKS, Policies.windowAttention(),
                        Policies.criticalSelection()), Policies.criticalDbudgetKv().withNormLossStop(0.05, 2));
        // the public overloads taking the stop's settings instead of the (package-private) rule
        assertSameSteps(Policies.dbudgetKv(stop, 2, Set.of(0)), Policies.dbudgetKv(0.05, 2, 2, Set.of(0)));
        assertSameSteps(Policies.criticalDbudgetKv(stop, 2, Policies.windowAttention(), Policies.criticalSelection()),
                Policies.criticalDbudgetKv(0.05, 2, 2));
        // undo
        assertSameSteps(snap, Policies.criticalAdaKv().withUniformHeads().withTopK());
        assertSameSteps(snap, Policies.pyramidKv().withUniformLayers());
        // a fixed-budget policy given the stop becomes dynamic
        assertFalse(snap.dynamicBudget());
        assertTrue(snap.withNormLossStop(0.01, 1).dynamicBudget());
    }

    @Test
    void composedPoliciesSelectTheSameRowsAsThePublishedOnes() {
        SequenceContext context = DATA.context();
        try (PolicyWorkspace ws = PolicyWorkspace.create()) {
            Budget half = Budget.fraction(0.5);
            CompressionPolicy snap = Policies.snapKv();
            assertSameRows(Policies.adaKv().select(context, half, ws),
                    snap.withAdaKvHeads(0.2).select(context, half, ws));
            assertSameRows(Policies.pyramidKv().select(context, half, ws),
                    snap.withPyramidLayers(20).select(context, half, ws));
            assertSameRows(Policies.criticalAdaKv().select(context, half, ws),
                    snap.withAdaKvHeads(0.2).withCriticalSelection(0.5, 1e-4, ValueNorm.L1).select(context, half, ws));
            assertSameRows(snap.select(context, half, ws),
                    Policies.criticalAdaKv().withUniformHeads().withTopK().select(context, half, ws));
            // PyramidKV really moves budget between layers here, so the comparisons above can tell steps apart
            Selection pyramid = Policies.pyramidKv().select(context, half, ws);
            Selection uniform = snap.select(context, half, ws);
            assertFalse(Arrays.deepEquals(pyramid.kept(), uniform.kept()), "pyramid and uniform layer budgets differ");
        }
    }

    @Test
    void uniformityIsReportedWithoutTheStepTypes() {
        assertTrue(Policies.snapKv().uniformLayers());
        assertTrue(Policies.snapKv().uniformHeads());
        assertFalse(Policies.pyramidKv().uniformLayers());
        assertTrue(Policies.pyramidKv().uniformHeads());
        assertFalse(Policies.adaKv().uniformHeads());
        assertFalse(Policies.dbudgetKv().uniformLayers());
        assertTrue(Policies.adaKv().withUniformHeads().uniformHeads());
    }

    @Test
    void badSettingsAreRejectedNamingTheAllowedRange() {
        CompressionPolicy snap = Policies.snapKv();
        assertMessage("[0, 1]", assertThrows(KvArgumentException.class, () -> snap.withAdaKvHeads(1.5)));
        assertMessage(">= 1", assertThrows(KvArgumentException.class, () -> snap.withPyramidLayers(0)));
        assertMessage("[0, 1)", assertThrows(KvArgumentException.class, () -> snap.withNormLossStop(1.0, 1)));
        assertMessage("lastRows", assertThrows(KvArgumentException.class, () -> snap.withNormLossStop(0.01, 0)));
        assertMessage("L1 or L2", assertThrows(KvArgumentException.class,
                () -> snap.withCriticalSelection(0.5, 1e-4, null)));
        assertMessage("eps", assertThrows(KvArgumentException.class,
                () -> snap.withCriticalSelection(0.5, Double.NaN, ValueNorm.L1)));
    }

    private static void assertSameSteps(CompressionPolicy expected, CompressionPolicy actual) {
        assertEquals(expected.protection(), actual.protection(), expected + ": protection");
        assertEquals(expected.scorer(), actual.scorer(), expected + ": scorer");
        assertEquals(expected.layerRule(), actual.layerRule(), expected + ": layer rule");
        assertEquals(expected.headAllocation(), actual.headAllocation(), expected + ": head allocation");
        assertEquals(expected.selector(), actual.selector(), expected + ": selector");
        assertEquals(expected.fullLayers(), actual.fullLayers(), expected + ": full layers");
    }

    private static void assertSameRows(Selection expected, Selection actual) {
        assertTrue(Arrays.deepEquals(expected.kept(), actual.kept()), "the same rows kept");
    }

    private static void assertMessage(String part, KvArgumentException e) {
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
