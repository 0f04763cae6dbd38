package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/**
 * Exact merge of two partial softmax attentions over disjoint key sets P and D (same query heads, same values'
 * dimension): with {@code g = sigmoid(lseP - lseD) = sum exp(aP) / (sum exp(aP) + sum exp(aD))},
 * {@code out = g * outP + (1 - g) * outD}, which equals one softmax over the concatenated scores [aP ; aD]. The
 * weights are formed against the larger of the two LSEs, so nothing overflows (no separate sums of exponentials).
 */
final class LseMerge {
    private LseMerge() {}

    /**
     * @param outP  {@code heads * headDim} outputs of the P part (zeros for a head without P rows)
     * @param lseP  {@code heads} log-sum-exps of the P part's scaled scores ({@code -Infinity}: no rows)
     * @param outD  the D part's outputs
     * @param lseD  the D part's log-sum-exps
     * @param out   {@code heads * headDim}, written (may be {@code outP} or {@code outD}); a head with no row in
     *              either part gets zeros
     */
    static void merge(float[] outP, float[] lseP, float[] outD, float[] lseD, int headDim, float[] out) {
        if (outP == null || lseP == null || outD == null || lseD == null || out == null) {
            throw new KvArgumentException("merge needs both parts' outputs and LSEs and an output array (got null)");
        }
        int heads = lseP.length;
        long n = (long) heads * headDim;
        if (headDim < 1 || lseD.length != heads || outP.length != n || outD.length != n || out.length != n) {
            throw new KvArgumentException("merge needs lseP and lseD of " + heads + " heads and outputs of heads x "
                    + "headDim = " + n + " floats, got lseD " + lseD.length + ", outP " + outP.length + ", outD "
                    + outD.length + ", out " + out.length + " (headDim " + headDim + ")");
        }
        for (int h = 0; h < heads; h++) {
            double lp = lseP[h];
            double ld = lseD[h];
            if (Double.isNaN(lp) || Double.isNaN(ld) || lp == Double.POSITIVE_INFINITY
                    || ld == Double.POSITIVE_INFINITY) {
                throw new KvArgumentException("LSEs must be finite or -Infinity (an empty part), got " + lp + " and "
                        + ld + " for head " + h);
            }
            int o = h * headDim;
            if (lp == Double.NEGATIVE_INFINITY && ld == Double.NEGATIVE_INFINITY) {
                java.util.Arrays.fill(out, o, o + headDim, 0f);
                continue;
            }
            double m = Math.max(lp, ld);
            double wp = Math.exp(lp - m);   // exp(-inf) = 0 for an empty part
            double wd = Math.exp(ld - m);
            double g = wp / (wp + wd);
            for (int i = o; i < o + headDim; i++) {
                out[i] = (float) (g * outP[i] + (1 - g) * outD[i]);
            }
        }
    }
}
