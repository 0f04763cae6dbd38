package io.kvslab.bench.cli;

import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.eval.pod.PodEvalConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/** The PoD options of {@code kvslab eval fidelity} ({@code --pod} and friends). */
final class PodOptions {
    @Option(names = "--pod", description = "also run the PoD rows (docs/pod.md): key sharing across layer groups, "
            + "v1/v2, PoD + SnapKV, SnapKV and StreamingLLM at PoD's memory")
    boolean pod;

    @Option(names = "--pod-only", description = "only the PoD rows (skips the policy table)")
    boolean only;

    @Option(names = "--pod-sinks", paramLabel = "N", defaultValue = "" + PodEvalConfig.DEFAULT_SINKS,
            description = "n_s (default ${DEFAULT-VALUE})")
    int sinks;

    @Option(names = "--pod-recent", paramLabel = "LIST", split = ",", description = "n_r values (default 16,32,64)")
    List<Integer> recents;

    @Option(names = "--pod-deltas", paramLabel = "LIST", split = ",",
            description = "similarity thresholds of the v1 and v2 rows (default 0,0.3,0.4,0.5)")
    List<Double> deltas;

    @Option(names = "--pod-delta", paramLabel = "X", defaultValue = "" + PodEvalConfig.DEFAULT_HEADLINE_DELTA,
            description = "threshold of the PoD + SnapKV and equal-memory rows (default ${DEFAULT-VALUE})")
    double delta;

    @Option(names = "--pod-snapkv", paramLabel = "LIST", split = ",",
            description = "SnapKV budgets combined with PoD (default 0.25,0.5)")
    List<Double> snapBudgets;

    @Option(names = "--pod-grouping", paramLabel = "FILE", description = "use this grouping file (kvslab pod "
            + "calibrate) at --pod-delta instead of calibrating; rejected if made for other weights")
    Path groupingFile;

    @Option(names = "--pod-calibration", paramLabel = "N", defaultValue = "" + PodCalibration.DEFAULT_TEXTS,
            description = "calibration texts (default ${DEFAULT-VALUE}, seeds 1001..)")
    int calibrationTexts;

    boolean requested() {
        return pod || only;
    }

    /** The PoD configuration; throws {@link IllegalArgumentException} (a usage error) on bad values. */
    PodEvalConfig config() {
        return new PodEvalConfig(sinks, recents != null ? recents : PodEvalConfig.DEFAULT_RECENTS,
                deltas != null ? deltas : PodEvalConfig.DEFAULT_DELTAS, delta,
                snapBudgets != null ? snapBudgets : PodEvalConfig.DEFAULT_SNAP_BUDGETS, true, calibrationTexts,
                PodCalibration.DEFAULT_QUERIES, groupingFile);
    }
}
