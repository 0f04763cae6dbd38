package io.kvslab.policy;

/**
 * Last step of a policy (kvpress's {@code compress}): which rows each KV head keeps, given its final budget. Always
 * keeps every protected row; returns strictly ascending row indices ready for {@code Sequence.retain}.
 */
public interface Selector {
    /**
     * Kept rows {@code [kvHead][]}, ascending.
     *
     * @param budgets final rows per head (protected included), from the head allocation
     */
    int[][] select(LayerContext layer, float[][] scores, boolean[][] protectedRows, int[] budgets,
                   PolicyWorkspace workspace);

    /** Whether this selector reads the layer's W_o. */
    default boolean needsOutputProjection() {
        return false;
    }

    /** Whether the selector reads the rows' keys or values (see {@link Scorer#readsRows()}). */
    default boolean readsRows() {
        return true;
    }
}
