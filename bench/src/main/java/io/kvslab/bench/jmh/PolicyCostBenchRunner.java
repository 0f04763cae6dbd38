package io.kvslab.bench.jmh;

import io.kvslab.bench.report.Json;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Runs {@link PolicyCostBench} and relates CriticalAdaKV's cost to the prefill attention of the same layer:
 * ratio = compress ms / prefill ms (and select ms / prefill ms) per context length.
 */
public final class PolicyCostBenchRunner {
    private PolicyCostBenchRunner() {}

    /** One context length. */
    public record Row(int context, double compressMs, double selectMs, double prefillMs) {
        public double compressRatio() {
            return compressMs / prefillMs;
        }

        public double selectRatio() {
            return selectMs / prefillMs;
        }
    }

    public record Report(boolean quick, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder("CriticalAdaKV (keep 25%) vs causal prefill attention, one Llama-3-8B "
                    + "layer (32 q heads, 8 KV heads, dim 128, f16)" + (quick ? " [quick run]" : "") + "\n");
            sb.append(String.format(Locale.ROOT, "%8s %13s %11s %12s %15s %13s%n", "context", "compress ms",
                    "select ms", "prefill ms", "compress/prefill", "select/prefill"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%8d %13.1f %11.1f %12.1f %15.3f %13.3f%n", r.context(),
                        r.compressMs(), r.selectMs(), r.prefillMs(), r.compressRatio(), r.selectRatio()));
            }
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("context", r.context()).put("compressMs", r.compressMs())
                        .put("selectMs", r.selectMs()).put("prefillMs", r.prefillMs())
                        .put("compressOverPrefill", r.compressRatio()).put("selectOverPrefill", r.selectRatio()));
            }
            return Json.object().put("benchmark", "policy").put("policy", "criticaladakv").put("keptFraction", 0.25)
                    .put("quick", quick).put("rows", list).toString();
        }
    }

    /**
     * Default: 4k tokens, 1 warm-up + 2 measured calls; quick: 4k, one measured call and no warm-up; full: 4k, 8k
     * and 32k with the benchmark's 1 + 3 calls (32k prefill takes about a minute a call on two cores).
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(Pattern.quote(PolicyCostBench.class.getName()) + "\\.");
        if (!size.full()) {
            options.param("context", "4096").measurementIterations(2);
        }
        if (quick) {
            options.warmupIterations(0).measurementIterations(1);
        }
        Collection<RunResult> results = JmhRunner.run(options, progress, PolicyCostBench.class);
        Map<Integer, double[]> byContext = new TreeMap<>();
        for (RunResult r : results) {
            int ctx = Integer.parseInt(r.getParams().getParam("context"));
            String name = r.getParams().getBenchmark();
            double ms = r.getPrimaryResult().getScore();
            double[] row = byContext.computeIfAbsent(ctx, k -> new double[] {Double.NaN, Double.NaN, Double.NaN});
            row[name.endsWith(".compress") ? 0 : name.endsWith(".select") ? 1 : 2] = ms;
        }
        List<Row> rows = new ArrayList<>();
        byContext.forEach((ctx, v) -> rows.add(new Row(ctx, v[0], v[1], v[2])));
        return new Report(quick, rows);
    }
}
