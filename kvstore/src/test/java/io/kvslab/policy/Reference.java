package io.kvslab.policy;

/**
 * Plain-Java reference maths for the policy tests, written from the formulas of research/algorithms.md and
 * independent of the production code (doubles throughout, no BLAS, no shared helpers).
 */
public final class Reference {
    private Reference() {
    }

    /**
     * Causal softmax attention probabilities of query head {@code qh} (of a [w][H][d] window) over one KV head's
     * keys [n][d]: {@code [w][n]}, zero for keys after the query.
     */
    static double[][] windowProbabilities(float[] queries, long[] queryPos, int queryHeads, int d, int qh,
                                          float[] keys, long[] keyPos) {
        int w = queryPos.length;
        int n = keyPos.length;
        double[][] p = new double[w][n];
        for (int i = 0; i < w; i++) {
            double[] z = new double[n];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                if (keyPos[j] > queryPos[i]) {
                    continue;
                }
                double dot = 0;
                for (int e = 0; e < d; e++) {
                    dot += (double) queries[(i * queryHeads + qh) * d + e] * keys[j * d + e];
                }
                z[j] = dot / Math.sqrt(d);
                max = Math.max(max, z[j]);
            }
            double sum = 0;
            for (int j = 0; j < n; j++) {
                if (keyPos[j] <= queryPos[i]) {
                    sum += Math.exp(z[j] - max);
                }
            }
            for (int j = 0; j < n; j++) {
                p[i][j] = keyPos[j] <= queryPos[i] ? Math.exp(z[j] - max) / sum : 0.0;
            }
        }
        return p;
    }

    /** Mean over the window queries of {@link #windowProbabilities}. */
    static double[] meanWindowAttention(float[] queries, long[] queryPos, int queryHeads, int d, int qh,
                                        float[] keys, long[] keyPos) {
        double[][] p = windowProbabilities(queries, queryPos, queryHeads, d, qh, keys, keyPos);
        double[] m = new double[keyPos.length];
        for (double[] row : p) {
            for (int j = 0; j < m.length; j++) {
                m[j] += row[j] / p.length;
            }
        }
        return m;
    }

    /** ||v_t W_o^h||_1 for every row t: W_o [D][H*d] row-major, values [n][d]. */
    static double[] valueNorms(float[] values, int n, int d, float[] wo, int modelDim, int queryHeads, int h) {
        double[] out = new double[n];
        for (int t = 0; t < n; t++) {
            out[t] = valueNorm(values, t, d, wo, modelDim, queryHeads, h);
        }
        return out;
    }

    /** ||v_t W_o^h||_1 in double for row t: W_o [D][H*d] row-major, values [n][d] (also the ffm kernels' tests). */
    public static double valueNorm(float[] values, int t, int d, float[] wo, int modelDim, int queryHeads, int h) {
        double s = 0;
        for (int k = 0; k < modelDim; k++) {
            double u = 0;
            for (int j = 0; j < d; j++) {
                u += (double) values[t * d + j] * wo[k * queryHeads * d + h * d + j];
            }
            s += Math.abs(u);
        }
        return s;
    }

    /** Single-query softmax attention output over the given rows: out[d] = sum_j p_j v_j. */
    static double[] attend(float[] q, float[] keys, float[] values, int n, int d) {
        double[] z = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int e = 0; e < d; e++) {
                dot += (double) q[e] * keys[j * d + e];
            }
            z[j] = dot / Math.sqrt(d);
            max = Math.max(max, z[j]);
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
            z[j] = Math.exp(z[j] - max);
            sum += z[j];
        }
        double[] out = new double[d];
        for (int j = 0; j < n; j++) {
            for (int e = 0; e < d; e++) {
                out[e] += z[j] / sum * values[j * d + e];
            }
        }
        return out;
    }
}
