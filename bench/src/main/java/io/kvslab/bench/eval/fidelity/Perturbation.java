package io.kvslab.bench.eval.fidelity;

import io.kvslab.policy.HeadSnapshot;
import io.kvslab.policy.Selection;

/**
 * Per-head output perturbation of a selection, CriticalKV's measure (arXiv 2502.03805, v1 abstract; v2 Fig. 4): for
 * every continuation query of the full run and every (layer, query head) h, {@code ||(o_h - o'_h) W_o^h||_1}, where
 * o_h is the head's attention output over every row the full run holds for it (the whole context and the
 * continuation up to the query) and o'_h the output over the selection's kept context rows plus the same continuation
 * rows. Queries, keys and values all come from the full run, so two selections are compared on identical inputs and
 * the difference is the selection's alone. Plain double-precision Java.
 */
final class Perturbation {
    private final FullRun run;
    private final float[][] wo;
    private final int queryHeads;
    private final int headDim;
    private final int modelDim;
    /** [layer][t][qh][d]: full outputs, computed once per run. */
    private final double[][][][] full;
    /** [layer][i][qh][d]: full outputs of the observation-window queries. */
    private final double[][][][] fullWindow;

    Perturbation(FullRun run, float[][] wo, int queryHeads, int headDim) {
        this.run = run;
        this.wo = wo;
        this.queryHeads = queryHeads;
        this.headDim = headDim;
        this.modelDim = wo[0].length / (queryHeads * headDim);
        int layers = run.rows.length;
        int cont = run.continuation();
        this.full = new double[layers][cont][queryHeads][];
        for (int l = 0; l < layers; l++) {
            int group = queryHeads / run.rows[l].length;
            for (int t = 0; t < cont; t++) {
                for (int h = 0; h < queryHeads; h++) {
                    HeadSnapshot kv = run.rows[l][h / group];
                    full[l][t][h] = attend(l, t, h, kv, null);
                }
            }
        }
        this.fullWindow = new double[layers][][][];
        for (int l = 0; l < layers; l++) {
            int group = queryHeads / run.rows[l].length;
            int w = run.atContext.get(l).inputs().windowPositions().length;
            fullWindow[l] = new double[w][queryHeads][];
            for (int i = 0; i < w; i++) {
                for (int h = 0; h < queryHeads; h++) {
                    fullWindow[l][i][h] = attendWindow(l, i, h, run.rows[l][h / group], null);
                }
            }
        }
    }

    /**
     * The same measure on the observation-window queries (the last context tokens, whose attention the policies
     * score): {@code [layer][queryHead]} mean over the window queries. A diagnostic: it shows how well a selection
     * does on the queries it was chosen for, next to the continuation's queries it must serve.
     */
    double[][] ofWindow(Selection selection) {
        int layers = run.rows.length;
        double[][] out = new double[layers][queryHeads];
        for (int l = 0; l < layers; l++) {
            int group = queryHeads / run.rows[l].length;
            int w = fullWindow[l].length;
            for (int h = 0; h < queryHeads; h++) {
                int kvHead = h / group;
                if (selection.keepsAll(l, kvHead)) {
                    continue;
                }
                double sum = 0;
                for (int i = 0; i < w; i++) {
                    double[] o2 = attendWindow(l, i, h, run.rows[l][kvHead], selection.kept(l, kvHead));
                    sum += projectedL1(l, h, fullWindow[l][i][h], o2);
                }
                out[l][h] = sum / w;
            }
        }
        return out;
    }

    /** Window query i of head h over the context rows at or before its position (all, or only the kept ones). */
    private double[] attendWindow(int l, int i, int h, HeadSnapshot kv, int[] keptContext) {
        int d = headDim;
        var window = run.atContext.get(l).inputs();
        float[] q = window.windowQueries();
        int qo = (i * queryHeads + h) * d;
        long pos = window.windowPositions()[i];
        int ctx = run.context;
        int[] rows;
        if (keptContext == null) {
            rows = new int[(int) Math.min(ctx, pos + 1)];
            for (int r = 0; r < rows.length; r++) {
                rows[r] = r;
            }
        } else {
            int m = 0;
            while (m < keptContext.length && keptContext[m] <= pos) {
                m++;
            }
            rows = java.util.Arrays.copyOf(keptContext, m);
        }
        double[] z = new double[rows.length];
        double max = Double.NEGATIVE_INFINITY;
        float[] keys = kv.keys();
        for (int j = 0; j < rows.length; j++) {
            double dot = 0;
            for (int e = 0; e < d; e++) {
                dot += (double) q[qo + e] * keys[rows[j] * d + e];
            }
            z[j] = dot / Math.sqrt(d);
            max = Math.max(max, z[j]);
        }
        double sum = 0;
        for (int j = 0; j < rows.length; j++) {
            z[j] = Math.exp(z[j] - max);
            sum += z[j];
        }
        double[] o = new double[d];
        float[] values = kv.values();
        for (int j = 0; j < rows.length; j++) {
            double p = z[j] / sum;
            for (int e = 0; e < d; e++) {
                o[e] += p * values[rows[j] * d + e];
            }
        }
        return o;
    }

    /** {@code [layer][queryHead]}: the mean over continuation queries of {@code ||(o - o') W_o^h||_1}. */
    double[][] of(Selection selection) {
        int layers = run.rows.length;
        int cont = run.continuation();
        double[][] out = new double[layers][queryHeads];
        for (int l = 0; l < layers; l++) {
            int group = queryHeads / run.rows[l].length;
            for (int h = 0; h < queryHeads; h++) {
                int kvHead = h / group;
                if (selection.keepsAll(l, kvHead)) {
                    continue; // nothing evicted: o' = o exactly
                }
                int[] kept = selection.kept(l, kvHead);
                double sum = 0;
                for (int t = 0; t < cont; t++) {
                    double[] o2 = attend(l, t, h, run.rows[l][kvHead], kept);
                    sum += projectedL1(l, h, full[l][t][h], o2);
                }
                out[l][h] = sum / cont;
            }
        }
        return out;
    }

    /**
     * Attention output of continuation query t of head h over context rows {@code keptContext} (null = all) and the
     * continuation rows 0..t.
     */
    private double[] attend(int l, int t, int h, HeadSnapshot kv, int[] keptContext) {
        int d = headDim;
        float[] q = run.continuationQueries[l][t];
        int qo = h * d;
        int ctx = run.context;
        int nContext = keptContext == null ? ctx : keptContext.length;
        int n = nContext + t + 1;
        double[] z = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        float[] keys = kv.keys();
        for (int i = 0; i < n; i++) {
            int row = i < nContext ? (keptContext == null ? i : keptContext[i]) : ctx + (i - nContext);
            double dot = 0;
            for (int e = 0; e < d; e++) {
                dot += (double) q[qo + e] * keys[row * d + e];
            }
            z[i] = dot / Math.sqrt(d);
            max = Math.max(max, z[i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            z[i] = Math.exp(z[i] - max);
            sum += z[i];
        }
        double[] o = new double[d];
        float[] values = kv.values();
        for (int i = 0; i < n; i++) {
            int row = i < nContext ? (keptContext == null ? i : keptContext[i]) : ctx + (i - nContext);
            double p = z[i] / sum;
            for (int e = 0; e < d; e++) {
                o[e] += p * values[row * d + e];
            }
        }
        return o;
    }

    /** {@code sum_k | sum_j (a_j - b_j) W_o[k][h*d + j] |}. */
    private double projectedL1(int l, int h, double[] a, double[] b) {
        int d = headDim;
        int stride = queryHeads * d;
        double s = 0;
        for (int k = 0; k < modelDim; k++) {
            double u = 0;
            for (int j = 0; j < d; j++) {
                u += (a[j] - b[j]) * wo[l][k * stride + h * d + j];
            }
            s += Math.abs(u);
        }
        return s;
    }
}
