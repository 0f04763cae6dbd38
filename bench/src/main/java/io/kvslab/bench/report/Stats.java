package io.kvslab.bench.report;

import java.util.Arrays;

/** Order statistics the reports print: medians and interpolated percentiles of samples. */
public final class Stats {
    private Stats() {}

    /** The median (the mean of the two middle values for an even count); {@code xs} is not changed. */
    public static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        return percentile(s, 0.5);
    }

    /** Linear interpolation between the closest ranks of {@code sorted} ({@code p} in [0, 1]). */
    public static double percentile(double[] sorted, double p) {
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
