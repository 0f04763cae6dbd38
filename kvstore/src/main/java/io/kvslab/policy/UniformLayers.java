package io.kvslab.policy;

import io.kvslab.internal.ffm.PolicyKernels;

/** Every layer keeps the sequence's budget: {@code budget.rowsFor(n)} rows of each KV head with n rows. */
public record UniformLayers() implements LayerBudgetRule {
    @Override
    public int[] rowsPerHead(LayerContext layer, int layerCount, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyKernels kernels) {
        int[] rows = new int[layer.kvHeads()];
        for (int h = 0; h < rows.length; h++) {
            rows[h] = budget.rowsFor(layer.head(h).length());
        }
        return rows;
    }
}
