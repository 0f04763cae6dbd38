package io.kvslab.bench.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LogitMetricsTest {
    private static float ln(double x) {
        return (float) Math.log(x);
    }

    @Test
    void klOfHandComputedDistributions() {
        // P = (0.75, 0.25), Q = (0.5, 0.5): KL = 0.75 ln 1.5 + 0.25 ln 0.5
        double expected = 0.75 * Math.log(1.5) + 0.25 * Math.log(0.5);
        assertEquals(expected, LogitMetrics.klDivergence(new float[]{ln(0.75), ln(0.25)}, new float[]{0f, 0f}), 1e-6);
        // and the other way round: KL(Q || P) = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25), a different number
        double reverse = 0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(2);
        assertEquals(reverse, LogitMetrics.klDivergence(new float[]{0f, 0f}, new float[]{ln(0.75), ln(0.25)}), 1e-6);
        // identical distributions (logits shifted by a constant) have KL 0
        assertEquals(0.0, LogitMetrics.klDivergence(new float[]{1, 2, 3}, new float[]{101, 102, 103}), 1e-12);
        // huge logits do not overflow
        assertEquals(expected, LogitMetrics.klDivergence(new float[]{1e4f + ln(0.75), 1e4f + ln(0.25)},
                new float[]{-5e3f, -5e3f}), 1e-3);
    }

    @Test
    void perplexityOfKnownProbabilities() {
        // uniform over 8 tokens: perplexity 8 whatever the targets
        float[][] uniform = new float[5][8];
        assertEquals(8.0, LogitMetrics.perplexity(uniform, new int[]{0, 3, 7, 1, 2, 5}, 0), 1e-9);
        // P(target) = 0.5 then 0.25: perplexity = exp((ln 2 + ln 4) / 2) = sqrt(8)
        float[][] logits = {{ln(0.5), ln(0.5)}, {ln(0.25), ln(0.75)}};
        assertEquals(Math.sqrt(8), LogitMetrics.perplexity(logits, new int[]{1, 0, 0}, 0), 1e-6);
        assertEquals(4.0, LogitMetrics.perplexity(logits, new int[]{1, 0, 0}, 1), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> LogitMetrics.perplexity(logits, new int[]{1, 0, 0}, 2));
        assertThrows(IllegalArgumentException.class, () -> LogitMetrics.negativeLogLikelihood(logits[0], 2));
    }

    @Test
    void runComparisonSummarisesSteps() {
        float[][] ref = {{0, 1, 0}, {2, 0, 0}, {0, 0, 3}};
        float[][] same = {{0, 1, 0}, {2, 0, 0}, {0, 0, 3}};
        float[][] other = {{0, 1, 0}, {0, 2, 0}, {0, 0, 3}};
        int[] tokens = {0, 1, 0, 2};
        RunComparison a = RunComparison.of(ref, same, tokens, 0, 3);
        assertEquals(0.0, a.meanKl(), 1e-12);
        assertEquals(1.0, a.top1Agreement());
        assertEquals(a.referencePerplexity(), a.otherPerplexity(), 1e-12);
        RunComparison b = RunComparison.of(ref, other, tokens, 0, 3);
        assertEquals(2.0 / 3, b.top1Agreement(), 1e-12);
        double kl = LogitMetrics.klDivergence(ref[1], other[1]);
        assertEquals(kl / 3, b.meanKl(), 1e-12);
        assertEquals(kl, b.maxKl(), 1e-12);
        assertTrue(b.otherPerplexity() != b.referencePerplexity());
        assertFalse(LogitMetrics.sameTop1(ref[1], other[1]));
        assertThrows(IllegalArgumentException.class, () -> RunComparison.of(ref, other, tokens, 2, 2));
    }
}
