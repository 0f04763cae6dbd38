package io.kvslab.bench.cli;

import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.eval.pod.PodEvalConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The PoD options of {@code kvslab eval fidelity} ({@code --pod} and friends). */
final class PodOptions {
    static final String USAGE = """
              --pod                 also run the PoD rows (docs/pod.md): key sharing across layer groups, v1/v2,
                                    PoD + SnapKV, SnapKV and StreamingLLM at PoD's memory
              --pod-only            only the PoD rows (skips the policy table; with --pod and --json the PoD
                                    report is a second JSON document after the policies')
              --pod-sinks N         n_s (default 4)
              --pod-recent LIST     n_r values (default 16,32,64)
              --pod-deltas LIST     similarity thresholds of the v1 and v2 rows (default 0,0.3,0.4,0.5)
              --pod-delta X         threshold of the PoD + SnapKV and equal-memory rows (default 0.5)
              --pod-snapkv LIST     SnapKV budgets combined with PoD (default 0.25,0.5)
              --pod-grouping FILE   use this grouping file (kvslab pod calibrate) at --pod-delta instead of
                                    calibrating; rejected if made for other weights
              --pod-calibration N   calibration texts (default 8, seeds 1001..)""".indent(2).stripTrailing();

    /** Flags to declare to {@link Args}. */
    static final List<String> FLAGS = List.of("pod", "pod-only");

    private PodOptions() {
    }

    /** What the options ask for: null when PoD rows are not requested. */
    record Request(PodEvalConfig config, boolean only) {
    }

    static Request read(Args a) throws UsageException {
        boolean pod = a.flag("pod");
        boolean only = a.flag("pod-only");
        int sinks = a.intValue("pod-sinks", PodEvalConfig.DEFAULT_SINKS, 0, 1 << 20);
        List<Integer> recents = ints(a.string("pod-recent", null), PodEvalConfig.DEFAULT_RECENTS, "--pod-recent");
        List<Double> deltas = doubles(a.string("pod-deltas", null), PodEvalConfig.DEFAULT_DELTAS, "--pod-deltas");
        double delta = a.doubleValue("pod-delta", PodEvalConfig.DEFAULT_HEADLINE_DELTA, 0, 1);
        List<Double> snap = doubles(a.string("pod-snapkv", null), PodEvalConfig.DEFAULT_SNAP_BUDGETS,
                "--pod-snapkv");
        String file = a.string("pod-grouping", null);
        int texts = a.intValue("pod-calibration", PodCalibration.DEFAULT_TEXTS, 1, 10_000);
        if (!pod && !only) {
            return null;
        }
        try {
            return new Request(new PodEvalConfig(sinks, recents, deltas, delta, snap, true, texts,
                    PodCalibration.DEFAULT_QUERIES, file == null ? null : Path.of(file)), only);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private static List<Integer> ints(String v, List<Integer> def, String name) throws UsageException {
        if (v == null) {
            return def;
        }
        List<Integer> out = new ArrayList<>();
        for (String s : v.split(",")) {
            try {
                out.add(Integer.parseInt(s.trim()));
            } catch (NumberFormatException e) {
                throw new UsageException(name + " takes comma-separated integers, got '" + v + "'");
            }
        }
        return out;
    }

    private static List<Double> doubles(String v, List<Double> def, String name) throws UsageException {
        if (v == null) {
            return def;
        }
        List<Double> out = new ArrayList<>();
        for (String s : v.split(",")) {
            try {
                out.add(Double.parseDouble(s.trim()));
            } catch (NumberFormatException e) {
                throw new UsageException(name + " takes comma-separated numbers, got '" + v + "'");
            }
        }
        return out;
    }
}
