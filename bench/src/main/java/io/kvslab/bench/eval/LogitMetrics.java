package io.kvslab.bench.eval;

/**
 * Distances between a reference run and another run of the same model over the same tokens, computed from raw
 * logits in double precision (log-softmax with the max subtracted, so large logits cannot overflow).
 */
public final class LogitMetrics {
    private LogitMetrics() {}

    /** log softmax(logits) in double precision. */
    public static double[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : logits) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : logits) {
            sum += Math.exp(x - max);
        }
        double logZ = max + Math.log(sum);
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = logits[i] - logZ;
        }
        return out;
    }

    /**
     * KL(P || Q) in nats, P = softmax(reference), Q = softmax(other): the information lost when the other run's
     * distribution stands in for the reference's. 0 when the runs agree; never negative (up to rounding, clamped).
     */
    public static double klDivergence(float[] reference, float[] other) {
        checkSameLength(reference, other);
        double[] lp = logSoftmax(reference);
        double[] lq = logSoftmax(other);
        double kl = 0;
        for (int i = 0; i < lp.length; i++) {
            double p = Math.exp(lp[i]);
            if (p > 0) {
                kl += p * (lp[i] - lq[i]);
            }
        }
        return Math.max(0, kl);
    }

    /** Whether both runs rank the same token first (the first index on ties, like greedy sampling). */
    public static boolean sameTop1(float[] reference, float[] other) {
        checkSameLength(reference, other);
        return argmax(reference) == argmax(other);
    }

    /** Index of the largest logit, the first one on ties. */
    public static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    /** -log P(token) under softmax(logits), in nats. */
    public static double negativeLogLikelihood(float[] logits, int token) {
        if (token < 0 || token >= logits.length) {
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, " + logits.length + ")");
        }
        return -logSoftmax(logits)[token];
    }

    /**
     * Perplexity of {@code tokens[from+1 .. n)} under a run: logits[i] predicts tokens[i+1], so this is
     * exp(mean over i in [from, n-1) of -log P(tokens[i+1] | logits[i])).
     */
    public static double perplexity(float[][] logits, int[] tokens, int from) {
        int n = tokens.length;
        if (logits.length < n - 1) {
            throw new IllegalArgumentException("need logits for the first " + (n - 1) + " tokens, got " + logits.length);
        }
        if (from < 0 || from >= n - 1) {
            throw new IllegalArgumentException("from must be in [0, " + (n - 1) + "), got " + from);
        }
        double sum = 0;
        for (int i = from; i < n - 1; i++) {
            sum += negativeLogLikelihood(logits[i], tokens[i + 1]);
        }
        return Math.exp(sum / (n - 1 - from));
    }

    private static void checkSameLength(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("logit vectors differ in length: " + a.length + " vs " + b.length);
        }
    }
}
