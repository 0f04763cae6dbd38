package io.kvslab.bench.eval;

import io.kvslab.bench.report.Stats;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

/**
 * 95% percentile bootstrap intervals over texts: the texts are resampled with replacement {@value #RESAMPLES} times,
 * the statistic is recomputed on each resample, and the interval is the 2.5th and 97.5th percentile of those values.
 * Paired statistics (a policy minus its base) resample the same texts for both, so the variation between texts that
 * both share cancels. A fixed seed makes every report reproducible. With one text every resample is that text and
 * the interval is a single point: the spread between texts is then unknown, not zero.
 */
public final class Bootstrap {
    /** Resamples per interval. */
    public static final int RESAMPLES = 2000;
    private static final long SEED = 20250203L;

    private Bootstrap() {
    }

    /** The interval of {@code statistic} over resamples of {@code n} texts; the function gets the text indices. */
    public static Interval interval(int n, ToDoubleFunction<int[]> statistic) {
        if (n < 1) {
            throw new IllegalArgumentException("a bootstrap needs at least one text, got " + n);
        }
        SplittableRandom rnd = new SplittableRandom(SEED);
        double[] values = new double[RESAMPLES];
        int[] sample = new int[n];
        for (int b = 0; b < RESAMPLES; b++) {
            for (int i = 0; i < n; i++) {
                sample[i] = rnd.nextInt(n);
            }
            values[b] = statistic.applyAsDouble(sample);
        }
        Arrays.sort(values);
        return new Interval(Stats.percentile(values, 0.025), Stats.percentile(values, 0.975));
    }

    /** The interval of the mean of {@code x}. */
    public static Interval mean(double[] x) {
        return interval(x.length, s -> mean(x, s));
    }

    /** The interval of the paired mean difference {@code mean(a) - mean(b)} (same texts in both). */
    public static Interval meanDifference(double[] a, double[] b) {
        checkPaired(a, b);
        return interval(a.length, s -> mean(a, s) - mean(b, s));
    }

    /** The mean of {@code x} over the texts of {@code sample}. */
    public static double mean(double[] x, int[] sample) {
        double sum = 0;
        for (int i : sample) {
            sum += x[i];
        }
        return sum / sample.length;
    }

    public static void checkPaired(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("paired samples differ in length: " + a.length + " vs " + b.length);
        }
    }

}
