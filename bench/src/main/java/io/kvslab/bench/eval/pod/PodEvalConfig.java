package io.kvslab.bench.eval.pod;

import java.nio.file.Path;
import java.util.List;

/**
 * Settings of the PoD rows of {@code kvslab eval fidelity --pod} (the texts, continuation, block size, observation
 * window and attention come from the fidelity settings).
 *
 * @param sinks              n_s
 * @param recents            n_r values; every PoD setting runs at each
 * @param deltas             similarity thresholds of the v1 and v2 rows (each calibrated grouping)
 * @param headlineDelta      the threshold of PoD + SnapKV and the equal-memory comparisons (also run as v1/v2 rows)
 * @param snapBudgets        SnapKV budgets (fractions) combined with PoD (v2, headline delta, smallest n_r)
 * @param equalMemory        also run SnapKV and StreamingLLM at the KV bytes of each headline PoD row
 * @param calibrationTexts   calibration stories (seeds 1001..)
 * @param calibrationQueries last positions of each calibration text whose attention is compared
 * @param groupingFile       a grouping file to use at the headline delta instead of calibrating (checked against
 *                           the model's fingerprint), or null
 */
public record PodEvalConfig(int sinks, List<Integer> recents, List<Double> deltas, double headlineDelta,
                            List<Double> snapBudgets, boolean equalMemory, int calibrationTexts,
                            int calibrationQueries, Path groupingFile) {
    public static final int DEFAULT_SINKS = 4;
    public static final List<Integer> DEFAULT_RECENTS = List.of(16, 32, 64);
    public static final List<Double> DEFAULT_DELTAS = List.of(0.0, 0.3, 0.4, 0.5);
    public static final double DEFAULT_HEADLINE_DELTA = 0.5;
    public static final List<Double> DEFAULT_SNAP_BUDGETS = List.of(0.25, 0.5);

    public PodEvalConfig {
        recents = List.copyOf(recents);
        deltas = List.copyOf(deltas);
        snapBudgets = List.copyOf(snapBudgets);
        if (sinks < 0) {
            throw new IllegalArgumentException("PoD sinks must be >= 0, got " + sinks);
        }
        if (recents.isEmpty() || recents.stream().anyMatch(r -> r < 1)) {
            throw new IllegalArgumentException("PoD recent windows must be >= 1, got " + recents);
        }
        for (double d : deltas) {
            checkDelta(d);
        }
        checkDelta(headlineDelta);
        for (double b : snapBudgets) {
            if (!(b > 0 && b <= 1)) {
                throw new IllegalArgumentException("SnapKV budgets combined with PoD must be in (0, 1], got " + b);
            }
        }
        if (calibrationTexts < 1 || calibrationQueries < 1) {
            throw new IllegalArgumentException("calibration needs >= 1 text and >= 1 query, got " + calibrationTexts
                    + " and " + calibrationQueries);
        }
    }

    private static void checkDelta(double d) {
        if (!(d >= 0 && d <= 1)) {
            throw new IllegalArgumentException("PoD delta must be in [0, 1], got " + d);
        }
    }

    /** The defaults: n_s 4, n_r 16/32/64, deltas 0/0.3/0.4/0.5, headline 0.5, PoD+SnapKV at 25% and 50%. */
    public static PodEvalConfig defaults() {
        return new PodEvalConfig(DEFAULT_SINKS, DEFAULT_RECENTS, DEFAULT_DELTAS, DEFAULT_HEADLINE_DELTA,
                DEFAULT_SNAP_BUDGETS, true, PodCalibration.DEFAULT_TEXTS, PodCalibration.DEFAULT_QUERIES, null);
    }
}
