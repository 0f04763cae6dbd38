package io.kvslab.policy;

/**
 * Second step of a policy: the nominal number of rows each KV head of a layer keeps (protected rows included),
 * before head allocation redistributes it. Uniform for SnapKV, a linear pyramid over layers for PyramidKV,
 * data-dependent for DBudgetKV.
 */
interface LayerBudgetRule {
    /**
     * Rows each KV head of {@code layer} keeps, {@code [kvHead]}. May exceed a head's rows (a token budget larger than
     * a short head): the head allocation clamps, and a head-wise allocation (Ada-KV) gives the surplus to the other
     * heads of the layer.
     *
     * @param counts        rows and protected rows of every (layer, KV head) of the sequence before compression
     *                      (the cross-layer view; {@code counts.layers()} is the model's layer count)
     * @param budget        the sequence's budget
     * @param scores        the scorer's output for this layer (the ranking a dynamic rule stops along)
     * @param protectedRows protection masks of this layer
     * @param layer the layer's rows and inputs
     * @param workspace the native kernels and scratch for this thread
     * @return {@code [kvHead]}: rows each head keeps, protected rows included
     */
    int[] rowsPerHead(LayerContext layer, RowCounts counts, Budget budget, float[][] scores, boolean[][] protectedRows,
                      PolicyWorkspace workspace);

    /**
     * Whether this rule decides the budget itself (and so takes only {@link Budget#dynamic()}).
     *
     * @return {@code true} for a dynamic rule
     */
    default boolean dynamic() {
        return false;
    }

    /**
     * How many observation-window queries this rule reads (0 if none).
     *
     * @return queries per layer, {@code >= 0}
     */
    default int windowQueries() {
        return 0;
    }
}
