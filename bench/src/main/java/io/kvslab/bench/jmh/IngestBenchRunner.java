package io.kvslab.bench.jmh;

import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.Stats;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Runs {@link IngestBench} in rounds (each round: the copy baseline, then f16, bf16 and f32 stores, one fork each)
 * and relates each store's ingest rate to the copy rate of the same round: ratio = append GB/s / copy GB/s of the
 * same f32 bytes. The report gives the median over rounds of each round's ratio, so the machine's drift between
 * rounds cancels.
 */
public final class IngestBenchRunner {
    private IngestBenchRunner() {}

    private static final String[] TARGETS = {"copy", "F16", "BF16", "F32"};

    /** One store element type: GB/s per round and the copy GB/s of the same rounds. */
    public record Row(String dtype, double[] gbps, double[] copyGbps) {
        public double[] ratios() {
            double[] r = new double[gbps.length];
            for (int i = 0; i < r.length; i++) {
                r[i] = gbps[i] / copyGbps[i];
            }
            return r;
        }

        public double medianRatio() {
            return Stats.median(ratios());
        }
    }

    public record Report(boolean quick, int rounds, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                    "Ingest: appendChunk of f32 K+V rows (8 KV heads x 128, %d-token chunks) vs a plain copy of the "
                            + "same bytes; %d round(s)%s%n", IngestBench.CHUNK, rounds, quick ? " [quick run]" : ""));
            sb.append(String.format(Locale.ROOT, "%6s %28s %28s %28s %8s%n", "store", "append GB/s per round",
                    "copy GB/s per round", "ratio per round", "median"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%6s %28s %28s %28s %8.3f%n", r.dtype(), list(r.gbps()),
                        list(r.copyGbps()), list(r.ratios()), r.medianRatio()));
            }
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("dtype", r.dtype()).put("gbps", boxed(r.gbps()))
                        .put("copyGbps", boxed(r.copyGbps())).put("ratios", boxed(r.ratios()))
                        .put("medianRatio", r.medianRatio()));
            }
            return Json.object().put("benchmark", "ingest").put("quick", quick).put("rounds", rounds)
                    .put("chunkTokens", IngestBench.CHUNK).put("chunkBytes", IngestBench.chunkBytes())
                    .put("rows", list).toString();
        }

        private static String list(double[] xs) {
            StringBuilder sb = new StringBuilder();
            for (double x : xs) {
                sb.append(sb.isEmpty() ? "" : " ").append(String.format(Locale.ROOT, "%.2f", x));
            }
            return sb.toString();
        }

        private static List<Object> boxed(double[] xs) {
            List<Object> l = new ArrayList<>();
            for (double x : xs) {
                l.add(x);
            }
            return l;
        }
    }

    /**
     * Default: one round of the benchmark's iterations; quick: one round of short iterations; full: three rounds
     * of the benchmark's iterations (the rounds interleave copy and stores, for the spread).
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        int rounds = size.full() ? 3 : 1;
        Map<String, double[]> gbps = new LinkedHashMap<>();
        for (String t : TARGETS) {
            gbps.put(t, new double[rounds]);
        }
        for (int round = 0; round < rounds; round++) {
            for (String t : TARGETS) {   // one JMH run per target, in this order, so rounds interleave copy and stores
                ChainedOptionsBuilder options = new OptionsBuilder()
                        .include(Pattern.quote(IngestBench.class.getName()) + "\\.ingest$").param("target", t);
                if (quick) {
                    JmhRunner.quick(options);
                }
                for (RunResult r : JmhRunner.run(options, progress, IngestBench.class)) {
                    double us = r.getPrimaryResult().getScore();
                    gbps.get(t)[round] = IngestBench.chunkBytes() / (us * 1e-6) / 1e9;
                }
            }
        }
        List<Row> rows = new ArrayList<>();
        for (String t : Arrays.copyOfRange(TARGETS, 1, TARGETS.length)) {
            rows.add(new Row(t, gbps.get(t), gbps.get("copy")));
        }
        return new Report(quick, rounds, rows);
    }
}
