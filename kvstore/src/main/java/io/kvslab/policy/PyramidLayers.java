package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * PyramidKV's layer budgets: lower layers keep more, upper layers less, linearly, with exactly the same total per
 * KV head as the uniform budget (see {@link #layerTargets}; the cross-layer view comes from {@link RowCounts}, so
 * compressing one layer at a time gives the same budgets as compressing the whole sequence).
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
record PyramidLayers(int beta) implements LayerBudgetRule {
    public PyramidLayers {
        if (beta < 1) {
            throw new KvArgumentException("PyramidKV's beta must be >= 1, got " + beta);
        }
    }

    @Override
    public int[] rowsPerHead(LayerContext layer, RowCounts counts, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyWorkspace workspace) {
        int[] rows = new int[layer.kvHeads()];
        for (int h = 0; h < rows.length; h++) {
            rows[h] = layerTargets(counts, h, budget)[layer.layer()];
        }
        return rows;
    }

    /**
     * Rows every layer keeps from KV head {@code kvHead}: the pyramid of {@link #layerRows} on the head's longest
     * layer, clamped to each layer's {@code [protected, rows]}, then balanced so the layers sum to exactly the
     * pooled uniform total {@code min(sum n_l, sum max(w_l, budget.nominalRows(n_l)))}: a surplus is taken from the
     * layers' rows above their protected ones, a deficit given to the layers' rows not yet kept, both in proportion
     * (largest remainder, ties to the lower layer). With equal lengths and an exact pyramid nothing moves; otherwise
     * this is what keeps the total at the budget when layers differ in length (decoding-time compression, where the
     * upper layers hold fewer rows than the target and the lower ones more) or the pyramid's step rounds down.
     */
    int[] layerTargets(RowCounts counts, int kvHead, Budget budget) {
        int layers = counts.layers();
        int[] n = new int[layers];
        int[] w = new int[layers];
        int longest = 0;
        long rowsTotal = 0;
        long budgetTotal = 0;
        for (int l = 0; l < layers; l++) {
            n[l] = counts.rows(l, kvHead);
            w[l] = counts.protectedRows(l, kvHead);
            longest = Math.max(longest, n[l]);
            rowsTotal += n[l];
            budgetTotal += Math.max(w[l], budget.nominalRows(n[l]));
        }
        long target = Math.min(rowsTotal, budgetTotal);
        int[] t = new int[layers];
        long sum = 0;
        for (int l = 0; l < layers; l++) {
            int shaped = layerRows(longest, w[l], budget.rowsFor(longest), l, layers);
            t[l] = Math.max(w[l], Math.min(n[l], shaped));
            sum += t[l];
        }
        long[] room = new long[layers];
        if (sum > target) {
            for (int l = 0; l < layers; l++) {
                room[l] = t[l] - w[l];
            }
            long[] share = shares(sum - target, room);
            for (int l = 0; l < layers; l++) {
                t[l] -= (int) share[l];
            }
        } else if (sum < target) {
            for (int l = 0; l < layers; l++) {
                room[l] = n[l] - t[l];
            }
            long[] share = shares(target - sum, room);
            for (int l = 0; l < layers; l++) {
                t[l] += (int) share[l];
            }
        }
        return t;
    }

    /**
     * Splits {@code amount} (at most the sum of {@code room}) in proportion to {@code room}, by largest remainder
     * with ties to the lower index; no share exceeds its room.
     */
    static long[] shares(long amount, long[] room) {
        long total = 0;
        for (long r : room) {
            total += r;
        }
        long[] share = new long[room.length];
        if (total == 0) {
            return share;
        }
        long given = 0;
        long[] remainder = new long[room.length];
        for (int i = 0; i < room.length; i++) {
            share[i] = Math.multiplyExact(amount, room[i]) / total;
            remainder[i] = Math.multiplyExact(amount, room[i]) % total;
            given += share[i];
        }
        for (long left = amount - given; left > 0; left--) {
            int best = -1;
            for (int i = 0; i < room.length; i++) {
                if (share[i] < room[i] && (best < 0 || remainder[i] > remainder[best])) {
                    best = i;
                }
            }
            if (best < 0) {
                break; // cannot happen when amount <= sum of room
            }
            share[best]++;
            remainder[best] = -1;
        }
        return share;
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
