package io.kvslab.policy;

/**
 * Plain per-head top-k: the protected rows plus the {@code budget - protected} best-scored unprotected rows (ties to
 * the lower position).
 */
record TopKSelector() implements Selector {
    @Override
    public boolean readsRows() {
        return false;   // scores and protection only
    }

    @Override
    public int[][] select(LayerContext layer, float[][] scores, boolean[][] protectedRows, int[] budgets,
                          PolicyWorkspace workspace) {
        int[][] kept = new int[layer.kvHeads()][];
        for (int h = 0; h < kept.length; h++) {
            kept[h] = selectHead(scores[h], protectedRows[h], budgets[h]);
        }
        return kept;
    }

    /** One head: protected rows plus the best {@code budget - protected} others. */
    static int[] selectHead(float[] scores, boolean[] prot, int budget) {
        int n = prot.length;
        int p = RowOrder.count(prot);
        if (budget >= n) {
            return RowOrder.indices(filled(n));
        }
        boolean[] unprotected = new boolean[n];
        for (int r = 0; r < n; r++) {
            unprotected[r] = !prot[r];
        }
        boolean[] keep = RowOrder.topMask(scores, unprotected, Math.max(0, budget - p));
        for (int r = 0; r < n; r++) {
            keep[r] |= prot[r];
        }
        return RowOrder.indices(keep);
    }

    static boolean[] filled(int n) {
        boolean[] all = new boolean[n];
        java.util.Arrays.fill(all, true);
        return all;
    }
}
