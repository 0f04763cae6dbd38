package io.kvslab.policy;

/**
 * Last step of a policy (kvpress's {@code compress}): which rows each KV head keeps, given its final budget. Always
 * keeps every protected row; returns strictly ascending row indices ready for {@code Sequence.retain}.
 */
interface Selector {
    /**
     * Kept rows {@code [kvHead][]}, ascending.
     *
     * @param budgets final rows per head (protected included), from the head allocation
     * @param layer the layer's rows and inputs
     * @param scores {@code [kvHead][row]} importance from the scorer (higher: more important)
     * @param protectedRows {@code [kvHead][row]}: rows that must be kept whatever their score
     * @param workspace the native kernels and scratch for this thread
     * @return {@code [kvHead][]}: the kept row indices of each head, ascending, protected rows included
     */
    int[][] select(LayerContext layer, float[][] scores, boolean[][] protectedRows, int[] budgets,
                   PolicyWorkspace workspace);

    /**
     * Whether this selector reads the layer's W_o.
     *
     * @return {@code true} if the policy must be given each layer's output projection
     */
    default boolean needsOutputProjection() {
        return false;
    }

    /**
     * Whether the selector reads the rows' keys or values (see {@link Scorer#readsRows()}).
     *
     * @return {@code true} if it reads keys or values
     */
    default boolean readsRows() {
        return true;
    }
}
