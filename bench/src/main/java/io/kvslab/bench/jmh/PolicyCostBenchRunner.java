package io.kvslab.bench.jmh;

import io.kvslab.bench.report.Json;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Runs {@link PolicyCostBench} between two runs of {@link SgemmProbeBench} and relates CriticalAdaKV's cost to the
 * prefill of the same layer: compress ms / prefill attention ms, and compress ms / full layer ms (the attention plus
 * the layer's projection and MLP FLOPs at the same run's sgemm rate), per context length, with the L1 value norms
 * (the default) and the L2 ones.
 */
public final class PolicyCostBenchRunner {
    private PolicyCostBenchRunner() {}

    /**
     * FLOPs per token of one Llama-3-8B layer's projections and SwiGLU MLP (Q, K, V, O and gate, up, down):
     * {@code 2 x (2 x 4096^2 + 2 x 4096 x 1024 + 3 x 4096 x 14336)}.
     */
    static final double LINEAR_FLOPS_PER_TOKEN = 2.0 * (2.0 * 4096 * 4096 + 2.0 * 4096 * 1024 + 3.0 * 4096 * 14336);

    /**
     * One context length. {@code fullLayerMs} = the measured prefill attention + the layer's projection and MLP
     * FLOPs priced at the same run's bare sgemm rate (what a model pays per layer for the prompt).
     */
    public record Row(int context, double compressMs, double selectMs, double prefillMs, double sgemmGflops,
                      double compressL2Ms, double selectL2Ms) {
        public double compressRatio() {
            return compressMs / prefillMs;
        }

        public double selectRatio() {
            return selectMs / prefillMs;
        }

        public double fullLayerMs() {
            return prefillMs + LINEAR_FLOPS_PER_TOKEN * context / (sgemmGflops * 1e6);
        }

        public double compressOverLayer() {
            return compressMs / fullLayerMs();
        }

        /** The same with {@code ValueNorm.L2}. */
        public double compressL2Ratio() {
            return compressL2Ms / prefillMs;
        }

        /** The same with {@code ValueNorm.L2}. */
        public double compressL2OverLayer() {
            return compressL2Ms / fullLayerMs();
        }
    }

    public record Report(boolean quick, double sgemmBefore, double sgemmAfter, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder("CriticalAdaKV (keep 25%) vs causal prefill attention and vs the full "
                    + "layer prefill (attention + projections + MLP at the same run's sgemm rate), one Llama-3-8B "
                    + "layer (32 q heads, 8 KV heads, dim 128, f16)" + (quick ? " [quick run]" : "") + "\n");
            sb.append(String.format(Locale.ROOT, "sgemm GFLOP/s: %.1f before, %.1f after%n", sgemmBefore, sgemmAfter));
            sb.append(String.format(Locale.ROOT, "%8s %5s %12s %10s %11s %14s %13s %16s %15s%n", "context", "norm",
                    "compress ms", "select ms", "prefill ms", "full layer ms", "compress/attn", "compress/layer",
                    "select/attn"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%8d %5s %12.1f %10.1f %11.1f %14.1f %13.3f %16.3f %15.3f%n",
                        r.context(), "L1", r.compressMs(), r.selectMs(), r.prefillMs(), r.fullLayerMs(),
                        r.compressRatio(), r.compressOverLayer(), r.selectRatio()));
                sb.append(String.format(Locale.ROOT, "%8d %5s %12.1f %10.1f %11.1f %14.1f %13.3f %16.3f %15.3f%n",
                        r.context(), "L2", r.compressL2Ms(), r.selectL2Ms(), r.prefillMs(), r.fullLayerMs(),
                        r.compressL2Ratio(), r.compressL2OverLayer(), r.selectL2Ms() / r.prefillMs()));
            }
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("context", r.context()).put("compressMs", r.compressMs())
                        .put("selectMs", r.selectMs()).put("prefillMs", r.prefillMs())
                        .put("sgemmGflops", r.sgemmGflops()).put("fullLayerMs", r.fullLayerMs())
                        .put("compressOverPrefill", r.compressRatio())
                        .put("compressOverFullLayer", r.compressOverLayer())
                        .put("selectOverPrefill", r.selectRatio())
                        .put("compressL2Ms", r.compressL2Ms()).put("selectL2Ms", r.selectL2Ms())
                        .put("compressL2OverPrefill", r.compressL2Ratio())
                        .put("compressL2OverFullLayer", r.compressL2OverLayer()));
            }
            return Json.object().put("benchmark", "policy").put("policy", "criticaladakv").put("keptFraction", 0.25)
                    .put("quick", quick).put("sgemmGflopsBefore", sgemmBefore).put("sgemmGflopsAfter", sgemmAfter)
                    .put("rows", list).toString();
        }
    }

    /**
     * Default: 4k tokens, 1 warm-up + 2 measured calls; quick: 4k, one measured call and no warm-up; full: 4k, 8k
     * and 32k with the benchmark's 1 + 3 calls (32k prefill takes about a minute a call on two cores).
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(Pattern.quote(PolicyCostBench.class.getName()) + "\\.")
                .timeout(TimeValue.minutes(60)); // JMH's 10 min default interrupts a 32k prefill on a loaded machine
        if (!size.full()) {
            options.param("context", "4096").measurementIterations(2);
        }
        if (quick) {
            options.warmupIterations(0).measurementIterations(1);
        }
        double before = PrefillBenchRunner.sgemm(quick, progress);
        Collection<RunResult> results = JmhRunner.run(options, progress, PolicyCostBench.class);
        double after = PrefillBenchRunner.sgemm(quick, progress);
        double sgemm = (before + after) / 2;
        Map<Integer, double[]> byContext = new TreeMap<>();
        for (RunResult r : results) {
            int ctx = Integer.parseInt(r.getParams().getParam("context"));
            String name = r.getParams().getBenchmark();
            double ms = r.getPrimaryResult().getScore();
            double[] row = byContext.computeIfAbsent(ctx, k -> new double[] {Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN});
            String method = name.substring(name.lastIndexOf('.') + 1);
            int column = switch (method) {
                case "compress" -> 0;
                case "select" -> 1;
                case "prefill" -> 2;
                case "compressL2" -> 3;
                case "selectL2" -> 4;
                default -> throw new IllegalStateException("unexpected benchmark " + name);
            };
            row[column] = ms;
        }
        List<Row> rows = new ArrayList<>();
        byContext.forEach((ctx, v) -> rows.add(new Row(ctx, v[0], v[1], v[2], sgemm, v[3], v[4])));
        return new Report(quick, before, after, rows);
    }
}
