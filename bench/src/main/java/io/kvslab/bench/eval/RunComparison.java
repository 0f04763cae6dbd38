package io.kvslab.bench.eval;

/**
 * How far a run (for example one on a compressed KV cache) strays from a reference run over the same tokens, over
 * the steps {@code [from, to)}.
 *
 * @param steps              steps compared
 * @param meanKl             mean KL(reference || other), nats
 * @param maxKl              largest per-step KL, nats
 * @param top1Agreement      fraction of steps whose argmax token agrees
 * @param referencePerplexity perplexity of the next tokens under the reference run
 * @param otherPerplexity    perplexity of the next tokens under the other run
 */
public record RunComparison(int steps, double meanKl, double maxKl, double top1Agreement, double referencePerplexity,
                            double otherPerplexity) {

    /**
     * Compares per-step logits: {@code reference[i]} and {@code other[i]} both follow {@code tokens[0..i]}. KL and top-1
     * use steps {@code [from, to)}; perplexity scores the tokens those steps predict ({@code tokens[i+1]}, so steps
     * stop at {@code tokens.length - 1} for it).
     */
    public static RunComparison of(float[][] reference, float[][] other, int[] tokens, int from, int to) {
        if (from < 0 || to > Math.min(reference.length, other.length) || from >= to) {
            throw new IllegalArgumentException("steps [" + from + ", " + to + ") must lie within the "
                    + Math.min(reference.length, other.length) + " steps both runs have, and be non-empty");
        }
        double sumKl = 0;
        double maxKl = 0;
        int agree = 0;
        for (int i = from; i < to; i++) {
            double kl = LogitMetrics.klDivergence(reference[i], other[i]);
            sumKl += kl;
            maxKl = Math.max(maxKl, kl);
            if (LogitMetrics.sameTop1(reference[i], other[i])) {
                agree++;
            }
        }
        int n = to - from;
        int pplTo = Math.min(to, tokens.length - 1);
        double refPpl = Double.NaN;
        double otherPpl = Double.NaN;
        if (pplTo > from) {
            int[] window = java.util.Arrays.copyOf(tokens, pplTo + 1);
            refPpl = LogitMetrics.perplexity(reference, window, from);
            otherPpl = LogitMetrics.perplexity(other, window, from);
        }
        return new RunComparison(n, sumKl / n, maxKl, (double) agree / n, refPpl, otherPpl);
    }
}
