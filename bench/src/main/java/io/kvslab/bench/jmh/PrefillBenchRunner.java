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
import java.util.regex.Pattern;

/**
 * Runs {@link PrefillBench} between two runs of {@link SgemmProbeBench} (before and after, so that the machine's
 * drift during the prefill runs shows as a spread of the baseline) and relates causal prefill GFLOP/s to the bare
 * sgemm GFLOP/s of the same run: ratio = prefill GFLOP/s / mean sgemm GFLOP/s.
 */
public final class PrefillBenchRunner {
    private PrefillBenchRunner() {}

    /** One context length. */
    public record Row(int context, double prefillMs, double prefillGflops, double sgemmGflops) {
        public double ratio() {
            return prefillGflops / sgemmGflops;
        }
    }

    /** The suite's result: the rows and the two sgemm baselines (before and after the prefill runs). */
    public record Report(boolean quick, double sgemmBefore, double sgemmAfter, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder("Causal prefill attention, one Llama-3-8B layer (32 q heads, 8 KV "
                    + "heads, dim 128, f16), vs a bare 512x4096x4096 sgemm of the same run"
                    + (quick ? " [quick run]" : "") + "\n");
            sb.append(String.format(Locale.ROOT, "sgemm GFLOP/s: %.1f before, %.1f after%n", sgemmBefore, sgemmAfter));
            sb.append(String.format(Locale.ROOT, "%8s %12s %16s %15s %8s%n", "context", "prefill ms", "prefill GFLOP/s",
                    "sgemm GFLOP/s", "ratio"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%8d %12.1f %16.1f %15.1f %8.3f%n", r.context(), r.prefillMs(),
                        r.prefillGflops(), r.sgemmGflops(), r.ratio()));
            }
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("context", r.context()).put("prefillMs", r.prefillMs())
                        .put("prefillGflops", r.prefillGflops()).put("sgemmGflops", r.sgemmGflops())
                        .put("ratio", r.ratio()));
            }
            return Json.object().put("benchmark", "prefill").put("quick", quick).put("sgemmGflopsBefore", sgemmBefore)
                    .put("sgemmGflopsAfter", sgemmAfter).put("rows", list).toString();
        }
    }

    /**
     * Default: 4k tokens, 1 warm-up + 3 calls (about a minute on two cores with the two sgemm runs); quick: one call,
     * no warm-up, sgemm 1 + 2; full: 4k as the default, then 32k with 2 calls and no warm-up (a 32k call is about
     * 9 TFLOP: minutes each on two cores).
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        double before = sgemm(quick, progress);
        List<Row> rows = new ArrayList<>();
        rows.add(prefill(4096, quick ? 0 : 1, quick ? 1 : 3, progress, 0));
        if (size.full()) {
            rows.add(prefill(32768, 0, 2, progress, 0));
        }
        double after = sgemm(quick, progress);
        double mean = (before + after) / 2;
        List<Row> out = new ArrayList<>();
        for (Row r : rows) {
            out.add(new Row(r.context(), r.prefillMs(), r.prefillGflops(), mean));
        }
        return new Report(quick, before, after, out);
    }

    /** GFLOP/s of the bare sgemm (mean time of the measured calls). */
    static double sgemm(boolean quick, PrintStream progress) throws RunnerException {
        ChainedOptionsBuilder o = new OptionsBuilder().include(Pattern.quote(SgemmProbeBench.class.getName()) + "\\.");
        if (quick) {
            o.warmupIterations(1).measurementIterations(2);
        }
        Collection<RunResult> results = JmhRunner.run(o, progress, SgemmProbeBench.class);
        double ms = results.iterator().next().getPrimaryResult().getScore();
        return SgemmProbeBench.FLOPS / (ms * 1e6);
    }

    private static Row prefill(int context, int warmups, int calls, PrintStream progress, double sgemm)
            throws RunnerException {
        ChainedOptionsBuilder o = new OptionsBuilder().include(Pattern.quote(PrefillBench.class.getName()) + "\\.")
                .param("context", String.valueOf(context)).warmupIterations(warmups).measurementIterations(calls)
                .timeout(TimeValue.minutes(60)); // a loaded 2-core machine took 15 min for one 32k call
        Collection<RunResult> results = JmhRunner.run(o, progress, PrefillBench.class);
        double ms = results.iterator().next().getPrimaryResult().getScore();
        return new Row(context, ms, PrefillBench.flops(context) / (ms * 1e6), sgemm);
    }
}
