package io.kvslab.bench.eval;

import io.kvslab.bench.report.Stats;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bootstrap intervals: coverage on a known distribution, pairing, degenerate cases, the percentile rule. */
class BootstrapTest {
    @Test
    void aboutNinetyFivePercentOfIntervalsCoverTheTrueMean() {
        Random rnd = new Random(5);
        int covered = 0;
        int trials = 200;
        for (int t = 0; t < trials; t++) {
            double[] x = new double[30];
            for (int i = 0; i < x.length; i++) {
                x[i] = 3 + rnd.nextGaussian();
            }
            Interval ci = Bootstrap.mean(x);
            double mean = java.util.Arrays.stream(x).average().orElseThrow();
            assertTrue(ci.low() <= mean && mean <= ci.high(), "the interval holds the sample mean");
            // the half-width is near 1.96 standard errors of this sample's mean
            double ss = 0;
            for (double v : x) {
                ss += (v - mean) * (v - mean);
            }
            double se = Math.sqrt(ss / (x.length - 1) / x.length);
            assertEquals(1.96 * se, (ci.high() - ci.low()) / 2, 0.2 * 1.96 * se);
            if (ci.low() <= 3 && 3 <= ci.high()) {
                covered++;
            }
        }
        // the percentile bootstrap undercovers a little at n = 30; far from 95% would mean a wrong interval
        assertTrue(covered >= 170 && covered <= 198, covered + " of " + trials + " intervals cover the mean");
    }

    @Test
    void pairedDifferencesCancelWhatBothShare() {
        Random rnd = new Random(6);
        double[] base = new double[20];
        double[] policy = new double[20];
        for (int i = 0; i < base.length; i++) {
            base[i] = rnd.nextGaussian() * 10;           // large spread between texts
            policy[i] = base[i] - 0.5 + 0.01 * rnd.nextGaussian();  // a small, consistent improvement
        }
        Interval paired = Bootstrap.meanDifference(policy, base);
        assertTrue(paired.high() < 0 && paired.low() > -0.6, "paired: " + paired);
        assertFalse(paired.includesZero());
        // the unpaired intervals of the two means overlap widely: only pairing shows the difference
        assertTrue(Bootstrap.mean(policy).high() > Bootstrap.mean(base).low());
    }

    @Test
    void degenerateAndInvalidSamples() {
        assertEquals(new Interval(2.5, 2.5), Bootstrap.mean(new double[]{2.5}));
        assertEquals(new Interval(0, 0), Bootstrap.mean(new double[]{0, 0, 0}));
        assertTrue(new Interval(0, 0).includesZero());
        assertTrue(new Interval(-1, 2).includesZero());
        assertFalse(new Interval(0.1, 2).includesZero());
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.mean(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.meanDifference(new double[2], new double[3]));
        // the same data give the same interval (fixed seed)
        double[] x = {1, 4, 2, 8, 5, 7};
        assertEquals(Bootstrap.mean(x), Bootstrap.mean(x));
    }

    @Test
    void percentilesInterpolateBetweenRanks() {
        double[] sorted = {0, 10, 20, 30, 40};
        assertEquals(0, Stats.percentile(sorted, 0), 1e-12);
        assertEquals(40, Stats.percentile(sorted, 1), 1e-12);
        assertEquals(20, Stats.percentile(sorted, 0.5), 1e-12);
        assertEquals(1, Stats.percentile(sorted, 0.025), 1e-12);   // position 0.1
        assertEquals(39, Stats.percentile(sorted, 0.975), 1e-12);  // position 3.9
    }
}
