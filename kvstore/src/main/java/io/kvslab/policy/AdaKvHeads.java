package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * Ada-KV head-wise budgets (arXiv 2407.11550, spec 1.3): the layer's free budget goes to the best-scored rows of
 * the layer as a whole (a top-k over the scores of all KV heads flattened), so heads with concentrated attention give
 * budget to heads with dispersed attention; each head first gets a safeguard floor.
 *
 * <p>Per KV head h with n_h rows, p_h protected and nominal budget b_h: free budget {@code f_h = clamp(b_h - p_h, 0,
 * n_h - p_h)}; floor {@code s_h = floor(alpha * f_h)} of its best unprotected rows; the rest of the layer's free
 * budget, {@code R = sum f_h - sum s_h}, goes to the R best remaining unprotected rows across all heads (ties: lower
 * position, then lower head index). Final {@code B_h = p_h + s_h + c_h} with c_h the head's share of the R. The
 * budgets sum to {@code sum (p_h + f_h)}, the uniform total, exactly. The free budget is pooled: a head shorter than
 * its nominal budget (a token budget after earlier head-wise compressions) leaves its unused share to the others, so
 * the layer keeps {@code min(rows, sum (p_h + nominal free))} (for f_h and s_h the nominal free budget is clamped to
 * the head's unprotected rows) (unlike the original's rounding of
 * {@code alpha*Bc + (1-alpha)*c_h}); the floor counts free rows as in FFY0/AdaKV ({@code int(Bc * alpha)} with the
 * window excluded). Scores of different heads are compared directly, which is meaningful for window attention
 * (probabilities on a common scale).
 *
 * <p>Each sequence is allocated on its own (spec 2.9 trap 4: kvpress's CriticalAdaKV shares one budget vector
 * across the batch).
 *
 * @param alpha the safeguard fraction in [0, 1] (0.2: kvpress and the authors' GQA advice; 0.5: FFY0's default)
 */
record AdaKvHeads(double alpha) implements HeadAllocation {
    public AdaKvHeads {
        if (!(alpha >= 0.0 && alpha <= 1.0)) {
            throw new KvArgumentException("Ada-KV's safeguard alpha must be in [0, 1], got " + alpha);
        }
    }

    @Override
    public int[] allocate(LayerContext layer, int[] nominal, float[][] scores, boolean[][] protectedRows) {
        int heads = nominal.length;
        int[] budget = new int[heads];
        int[][] ranked = new int[heads][];
        int[] cursor = new int[heads];
        long remaining = 0;
        long candidates = 0;
        for (int h = 0; h < heads; h++) {
            boolean[] prot = protectedRows[h];
            int n = prot.length;
            int p = RowOrder.count(prot);
            long nominalFree = Math.max(0L, (long) nominal[h] - p);
            int free = (int) Math.min(nominalFree, n - p);
            int floor = (int) Math.floor(alpha * free);
            boolean[] unprotected = new boolean[n];
            for (int r = 0; r < n; r++) {
                unprotected[r] = !prot[r];
            }
            ranked[h] = RowOrder.ranked(scores[h], unprotected); // floor = the first `floor` of these
            cursor[h] = floor;
            budget[h] = p + floor;
            remaining += nominalFree - floor;
            candidates += n - p - floor;
        }
        remaining = Math.min(remaining, candidates); // a pooled token budget cannot keep more rows than exist
        long[][] positions = new long[heads][];
        for (int h = 0; h < heads; h++) {
            positions[h] = layer.head(h).positions();
        }
        // flattened top-R: a merge of the per-head rankings (each already best first)
        for (long k = 0; k < remaining; k++) {
            int best = -1;
            for (int h = 0; h < heads; h++) {
                if (cursor[h] >= ranked[h].length) {
                    continue;
                }
                if (best < 0 || better(scores, positions, h, ranked[h][cursor[h]], best,
                        ranked[best][cursor[best]])) {
                    best = h;
                }
            }
            if (best < 0) {
                break; // cannot happen: remaining is at most the unprotected rows left
            }
            cursor[best]++;
            budget[best]++;
        }
        return budget;
    }

    private static boolean better(float[][] scores, long[][] positions, int h, int r, int bh, int br) {
        int c = Integer.compare(RowOrder.sortable(scores[h][r]), RowOrder.sortable(scores[bh][br]));
        if (c != 0) {
            return c > 0;
        }
        int pc = Long.compare(positions[h][r], positions[bh][br]);
        if (pc != 0) {
            return pc < 0;
        }
        return h < bh;
    }
}
