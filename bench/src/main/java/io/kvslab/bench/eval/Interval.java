package io.kvslab.bench.eval;

import java.util.Locale;

/**
 * A confidence interval {@code [low, high]} (a 95% percentile bootstrap interval from {@link Bootstrap}).
 */
public record Interval(double low, double high) {
    /** Whether zero lies inside (the measured effect or difference may be no effect at all). */
    public boolean includesZero() {
        return low <= 0 && high >= 0;
    }

    /** {@code [low, high]} with {@code format} for both ends. */
    public String format(String format) {
        return "[" + String.format(Locale.ROOT, format, low) + ", " + String.format(Locale.ROOT, format, high) + "]";
    }
}
