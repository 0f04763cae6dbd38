package io.kvslab.internal.ffm;

/**
 * Plain-Java versions of the policy kernels ({@code kvs_policy_window_attention}, {@code kvs_policy_value_norms}),
 * used where the native library cannot load, and the L2 value-norm kernel (Java on every path). Same contract as
 * {@link PolicyKernels}' methods, whose argument checks run before either path; products accumulate in double.
 */
final class JavaPolicyKernels {
    private JavaPolicyKernels() {}

    /** See {@link PolicyKernels#windowAttention}; arguments already validated. */
    static void windowAttention(float[] queries, int window, int queryHeads, int headDim, int firstHead,
                                int groupHeads, float[] keys, int rows, long[] keyPositions, long[] queryPositions,
                                float scale, float[] meanOut, float[] lastOut) {
        double[] p = new double[rows];
        for (int gi = 0; gi < groupHeads; gi++) {
            int h = firstHead + gi;
            double[] mean = new double[rows];
            for (int i = 0; i < window; i++) {
                int visible = visiblePrefix(keyPositions, rows, queryPositions[i]);
                int q = (i * queryHeads + h) * headDim;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    double s = 0;
                    for (int d = 0; d < headDim; d++) {
                        s += (double) queries[q + d] * keys[j * headDim + d];
                    }
                    p[j] = s * scale;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < visible; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                for (int j = 0; j < rows; j++) {
                    double prob = j < visible ? p[j] / sum : 0;
                    mean[j] += prob;
                    if (lastOut != null && i == window - 1) {
                        lastOut[gi * rows + j] = (float) prob;
                    }
                }
            }
            for (int j = 0; j < rows; j++) {
                meanOut[gi * rows + j] = (float) (mean[j] / window);
            }
        }
    }

    /** See {@link PolicyKernels#valueNorms}; arguments already validated. */
    static void valueNorms(float[] values, int rows, float[] wo, int modelDim, int queryHeads, int headDim,
                           int firstHead, int groupHeads, float[] out) {
        int woStride = queryHeads * headDim;
        for (int gi = 0; gi < groupHeads; gi++) {
            int h = firstHead + gi;
            for (int t = 0; t < rows; t++) {
                double norm = 0;
                for (int k = 0; k < modelDim; k++) {
                    double u = 0;
                    int w = k * woStride + h * headDim;
                    for (int d = 0; d < headDim; d++) {
                        u += (double) values[t * headDim + d] * wo[w + d];
                    }
                    norm += Math.abs(u);
                }
                out[gi * rows + t] = (float) norm;
            }
        }
    }

    /**
     * See {@link PolicyKernels#valueL2Norms}; arguments already validated. {@code y = G_h v} in fp32 (the inner loop
     * runs over contiguous Gram rows, which C2 vectorises), then {@code v . y} in double; a tiny negative result of
     * rounding (the quadratic form is >= 0) becomes 0.
     */
    static void valueL2Norms(float[] values, int rows, float[] gram, int headDim, int firstHead, int groupHeads,
                             float[] out) {
        int d = headDim;
        float[] y = new float[d];
        for (int gi = 0; gi < groupHeads; gi++) {
            int g = (firstHead + gi) * d * d;
            for (int t = 0; t < rows; t++) {
                int v = t * d;
                java.util.Arrays.fill(y, 0f);
                for (int i = 0; i < d; i++) {
                    float vi = values[v + i];
                    int gr = g + i * d;
                    for (int j = 0; j < d; j++) {
                        y[j] += vi * gram[gr + j];
                    }
                }
                double q = 0;
                for (int j = 0; j < d; j++) {
                    q += (double) y[j] * values[v + j];
                }
                out[gi * rows + t] = (float) Math.sqrt(Math.max(0.0, q));
            }
        }
    }

    /** Keys visible to a query at {@code position}: positions ascend, so a prefix. */
    private static int visiblePrefix(long[] keyPositions, int rows, long position) {
        int lo = 0;
        int hi = rows;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keyPositions[mid] <= position) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
}
