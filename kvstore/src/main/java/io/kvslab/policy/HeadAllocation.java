package io.kvslab.policy;

/**
 * Third step of a policy: turns the layer rule's nominal per-head budgets into the final per-KV-head budgets,
 * uniform or head-wise (Ada-KV). A final budget is never below the head's protected count and never above its row
 * count.
 */
interface HeadAllocation {
    /**
     * Final rows to keep per KV head.
     *
     * @param nominal       the layer rule's rows per head (protected included)
     * @param scores        the scorer's output {@code [kvHead][row]}
     * @param protectedRows protection masks {@code [kvHead][row]}
     * @param layer the layer's rows and inputs
     * @return {@code [kvHead]}: final rows per head, protected included, each at most the head's rows
     */
    int[] allocate(LayerContext layer, int[] nominal, float[][] scores, boolean[][] protectedRows);
}
