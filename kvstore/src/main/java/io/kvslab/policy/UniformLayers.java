package io.kvslab.policy;

/**
 * Every layer keeps the sequence's budget: {@code budget.nominalRows(n)} rows of each KV head with n rows (the head
 * allocation clamps it to the head's rows; Ada-KV pools it over the layer's heads).
 */
record UniformLayers() implements LayerBudgetRule {
    @Override
    public int[] rowsPerHead(LayerContext layer, RowCounts counts, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyWorkspace workspace) {
        int[] rows = new int[layer.kvHeads()];
        for (int h = 0; h < rows.length; h++) {
            rows[h] = budget.nominalRows(layer.head(h).length());
        }
        return rows;
    }
}
