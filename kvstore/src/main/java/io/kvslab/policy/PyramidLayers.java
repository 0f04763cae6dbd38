package io.kvslab.policy;

import io.kvslab.internal.ffm.PolicyKernels;

/**
 * PyramidKV's layer budgets: lower layers keep more, upper layers less, linearly, with the same total as the
 * uniform budget (up to integer rounding).
 *
 * <p>Formula of the PyramidKV code (KVCache-Factory {@code pyramidkv_utils.py}, also FFY0/AdaKV's
 * {@code pyram_mode}, spec 1.3), per KV head with n rows, w protected (window) rows and uniform budget B (window
 * included): {@code Bc = B - w}, {@code min = Bc / beta}, {@code max = 2*Bc - min} (integer division); if
 * {@code max >= n - w} then {@code max = n - w, min = 2*Bc - max}; {@code step = (max - min) / (L - 1)}; layer l
 * keeps {@code w + max - l*step} rows. The mean over layers is {@code w + Bc} when (max - min) divides by L-1, and at
 * most L-1 rows less per head otherwise. A one-layer model, or {@code Bc <= 0}, keeps the uniform budget; a head
 * whose budget covers all its non-window rows keeps everything.
 *
 * <p>kvpress's PyramidKVPress differs: it falls back to the uniform budget unless {@code min >= w}, which with
 * beta = 20 needs per-head budgets of at least 20 w (640 rows for w = 32); this class follows the original code.
 *
 * @param beta steepness (>= 1; 20 in the paper's code): the top layer keeps {@code Bc / beta} non-window rows
 */
public record PyramidLayers(int beta) implements LayerBudgetRule {
    public PyramidLayers {
        if (beta < 1) {
            throw new PolicyException("PyramidKV's beta must be >= 1, got " + beta);
        }
    }

    @Override
    public int[] rowsPerHead(LayerContext layer, int layerCount, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyKernels kernels) {
        int[] rows = new int[layer.kvHeads()];
        for (int h = 0; h < rows.length; h++) {
            int n = layer.head(h).length();
            int w = RowOrder.count(protectedRows[h]);
            rows[h] = layerRows(n, w, budget.rowsFor(n), layer.layer(), layerCount);
        }
        return rows;
    }

    /** Rows layer {@code l} of {@code layers} keeps from a head with n rows, w protected, uniform budget b. */
    int layerRows(int n, int w, int b, int l, int layers) {
        long bc = (long) b - w;
        if (layers < 2 || bc <= 0) {
            return b;
        }
        if (bc >= n - w) {
            return n;
        }
        long min = bc / beta;
        long max = 2 * bc - min;
        if (max >= n - w) {
            max = n - w;
            min = 2 * bc - max;
        }
        long step = (max - min) / (layers - 1);
        long rows = w + max - (long) l * step;
        return (int) Math.max(1, Math.min(n, rows));
    }
}
