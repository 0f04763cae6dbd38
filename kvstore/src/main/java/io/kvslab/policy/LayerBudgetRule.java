package io.kvslab.policy;

import io.kvslab.internal.ffm.PolicyKernels;

/**
 * Second step of a policy: the nominal number of rows each KV head of a layer keeps (protected rows included),
 * before head allocation redistributes it. Uniform for SnapKV, a linear pyramid over layers for PyramidKV,
 * data-dependent for DBudgetKV.
 */
public interface LayerBudgetRule {
    /**
     * Rows each KV head of {@code layer} keeps, {@code [kvHead]}.
     *
     * @param layerCount    layers of the model
     * @param budget        the sequence's budget
     * @param scores        the scorer's output for this layer (the ranking a dynamic rule stops along)
     * @param protectedRows protection masks of this layer
     */
    int[] rowsPerHead(LayerContext layer, int layerCount, Budget budget, float[][] scores, boolean[][] protectedRows,
                      PolicyKernels kernels);

    /** Whether this rule decides the budget itself (and so takes only {@link Budget#dynamic()}). */
    default boolean dynamic() {
        return false;
    }

    /** How many observation-window queries this rule reads (0 if none). */
    default int windowQueries() {
        return 0;
    }
}
