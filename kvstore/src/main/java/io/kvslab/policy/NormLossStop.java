package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * DBudgetKV's dynamic layer budget (ReFreeKV, arXiv 2502.16886, spec 4.3): keep the shortest prefix of the ranking
 * whose attention-norm loss stays within the threshold T.
 *
 * <p>Per layer: {@code a[qh][row]} = attention of the last prompt token (or the mean of the last {@code lastRows}
 * queries over the rows each can see, Eq. 2) of every query head over its KV head's rows, softmax in fp32. The
 * protected rows (the 4 sinks) are ranked first and always kept; the other rows (candidates) are ranked by the
 * scorer (newest to oldest with {@link RecencyScorer}: the paper's position ranking). Keeping the best K
 * candidates retains, per query head, {@code kept_qh(K) = sqrt(sum over the K best candidates of a^2)}; the loss is
 * {@code (base - kept(K)) / base}. K is the smallest count with loss &lt;= T, which is the official code's
 * {@code cut = max{i : ratio_i <= T}} over the oldest-first reverse cumulative sum (the loss only falls as K grows).
 * The same K applies to every KV head of the layer (spec 4.7 trap 6).
 *
 * <p>Variants (the code's and the paper's, spec 4.3): {@link SinkBaseline#EXCLUDED} (code, default) leaves the
 * sinks out of base and kept; {@link SinkBaseline#INCLUDED} (paper Eq. 1) counts them in both. Heads combine by
 * {@link HeadAggregation#MEAN_OF_NORMS} (code, default: base and kept are means over query heads of per-head L2
 * norms) or {@link HeadAggregation#FROBENIUS} (one Frobenius norm over all heads). A zero baseline (no attention
 * on the candidates) keeps every row (spec 4.7 trap 2); a head with at most one candidate is kept whole.
 *
 * @param threshold T, the largest allowed relative norm loss (0.01 in the paper; the code's default is 0.05)
 * @param lastRows  k, how many of the last queries are averaged (1 in the paper)
 * @param baseline  whether the sinks count in the norms
 * @param aggregation how query heads combine
 */
record NormLossStop(double threshold, int lastRows, SinkBaseline baseline, HeadAggregation aggregation)
        implements LayerBudgetRule {
    /** Whether the protected rows (sinks) count in the baseline and retained norms. */
    public enum SinkBaseline { EXCLUDED, INCLUDED }

    /** How the per-query-head norms combine into one loss per layer. */
    public enum HeadAggregation { MEAN_OF_NORMS, FROBENIUS }

    public NormLossStop {
        if (!(threshold >= 0.0 && threshold < 1.0)) {
            throw new KvArgumentException("DBudgetKV's threshold must be in [0, 1), got " + threshold);
        }
        if (lastRows < 1) {
            throw new KvArgumentException("DBudgetKV averages at least the last query row, got lastRows " + lastRows);
        }
        if (baseline == null || aggregation == null) {
            throw new KvArgumentException("baseline and aggregation are required (got null)");
        }
    }

    /** The paper's configuration: T = 1%, the last row only, the code's norm conventions. */
    public static NormLossStop paper() {
        return new NormLossStop(0.01, 1, SinkBaseline.EXCLUDED, HeadAggregation.MEAN_OF_NORMS);
    }

    @Override
    public boolean dynamic() {
        return true;
    }

    @Override
    public int windowQueries() {
        return lastRows;
    }

    @Override
    public int[] rowsPerHead(LayerContext layer, RowCounts counts, Budget budget, float[][] scores,
                             boolean[][] protectedRows, PolicyWorkspace workspace) {
        WindowQueries w = layer.requireWindow("DBudgetKV").last(lastRows);
        int g = layer.groupSize();
        int kvHeads = layer.kvHeads();
        // squares of the attention each query head gives to its KV head's candidates, best-ranked first
        double[][] ranked = new double[layer.queryHeads()][];
        double[] protectedSq = new double[layer.queryHeads()];
        int[] protectedCount = new int[kvHeads];
        for (int h = 0; h < kvHeads; h++) {
            HeadSnapshot head = layer.head(h);
            int n = head.length();
            boolean[] prot = protectedRows[h];
            protectedCount[h] = RowOrder.count(prot);
            boolean[] cand = new boolean[n];
            for (int r = 0; r < n; r++) {
                cand[r] = !prot[r];
            }
            int[] order = RowOrder.ranked(scores[h], cand);
            float[] att = lastRowsAttention(layer, w, h, workspace);
            for (int q = 0; q < g; q++) {
                double[] sq = new double[order.length];
                for (int i = 0; i < order.length; i++) {
                    double a = att[q * n + order[i]];
                    sq[i] = a * a;
                }
                double p = 0;
                for (int r = 0; r < n; r++) {
                    if (prot[r]) {
                        double a = att[q * n + r];
                        p += a * a;
                    }
                }
                ranked[h * g + q] = sq;
                protectedSq[h * g + q] = p;
            }
        }
        int keptCandidates = keptCandidates(ranked, protectedSq, threshold, baseline, aggregation);
        int[] rows = new int[kvHeads];
        for (int h = 0; h < kvHeads; h++) {
            int n = layer.head(h).length();
            rows[h] = keptCandidates < 0 ? n : Math.min(n, protectedCount[h] + keptCandidates);
        }
        return rows;
    }

    /**
     * The smallest number K of best-ranked candidates whose norm loss is at most T, or -1 for "keep everything"
     * (zero baseline, or no head with more than one candidate).
     *
     * @param rankedSquares   {@code [queryHead][i]}: squared attention of the i-th best candidate
     * @param protectedSquares {@code [queryHead]}: sum of squared attention on the protected rows
     */
    static int keptCandidates(double[][] rankedSquares, double[] protectedSquares, double threshold,
                              SinkBaseline baseline, HeadAggregation aggregation) {
        int heads = rankedSquares.length;
        int longest = 0;
        for (double[] r : rankedSquares) {
            longest = Math.max(longest, r.length);
        }
        if (longest <= 1) {
            return -1;
        }
        double[] extra = new double[heads];
        double[] total = new double[heads];
        for (int q = 0; q < heads; q++) {
            extra[q] = baseline == SinkBaseline.INCLUDED ? protectedSquares[q] : 0.0;
            double t = extra[q];
            for (double s : rankedSquares[q]) {
                t += s;
            }
            total[q] = t;
        }
        double base = combine(total, aggregation);
        if (!(base > 0.0)) {
            return -1;
        }
        double[] kept = extra.clone();
        for (int k = 0; k <= longest; k++) {
            double loss = (base - combine(kept, aggregation)) / base;
            if (loss <= threshold) {
                return k;
            }
            for (int q = 0; q < heads; q++) {
                if (k < rankedSquares[q].length) {
                    kept[q] += rankedSquares[q][k];
                }
            }
        }
        return longest;
    }

    private static double combine(double[] sumsOfSquares, HeadAggregation aggregation) {
        double acc = 0;
        for (double s : sumsOfSquares) {
            acc += aggregation == HeadAggregation.MEAN_OF_NORMS ? Math.sqrt(s) : s;
        }
        return aggregation == HeadAggregation.MEAN_OF_NORMS ? acc / sumsOfSquares.length : Math.sqrt(acc);
    }

    /**
     * {@code [g][n]}: attention of the group's query heads over KV head {@code h}'s rows, averaged over the last
     * {@code lastRows} queries, each column divided by the number of those queries that can see it (Eq. 2).
     */
    private static float[] lastRowsAttention(LayerContext layer, WindowQueries w, int h, PolicyWorkspace workspace) {
        HeadSnapshot head = layer.head(h);
        int n = head.length();
        int g = layer.groupSize();
        float[] mean = new float[g * n];
        workspace.kernels().windowAttention(w.queries(), w.size(), layer.queryHeads(), layer.headDim(), h * g, g,
                head.keys(), n, head.positions(), w.positions(), mean, null);
        if (w.size() > 1) {
            long[] pos = head.positions();
            for (int r = 0; r < n; r++) {
                int seeing = 0;
                for (long qp : w.positions()) {
                    if (qp >= pos[r]) {
                        seeing++;
                    }
                }
                float scale = seeing == 0 ? 0f : (float) w.size() / seeing;
                for (int q = 0; q < g; q++) {
                    mean[q * n + r] *= scale;
                }
            }
        }
        return mean;
    }
}
