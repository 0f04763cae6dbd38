package io.kvslab.bench.jmh;

import io.kvslab.DType;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Runs {@link DecodeAttentionBench} and {@link BandwidthProbeBench} in one JMH run (through the Runner API) and
 * relates them: kernel GB/s of K+V read per decode step over the probe's read bandwidth at the same thread count.
 */
public final class AttentionBenchRunner {
    private AttentionBenchRunner() {}

    /** One decode configuration. */
    public record Row(int context, String dtype, int threads, int tokensPerBlock, double msPerOp, double msError, double kernelGBps,
                      double probeGBps, double kernelOnlyMs) {
        /** Kernel bandwidth as a fraction of the probe's (NaN without a probe result for this thread count). */
        public double ratio() {
            return kernelGBps / probeGBps;
        }
    }

    /** The probe at one thread count. */
    public record Probe(int threads, long bytes, double msPerOp, double msError, double gbps) {}

    /** Everything one run measured. */
    public record Report(boolean quick, List<Probe> probes, List<Row> rows) implements SuiteReport {

        /** The human-readable table. */
        public String table() {
            StringBuilder sb = new StringBuilder();
            sb.append("Decode attention, one Llama-3-8B layer (32 q heads, 8 kv heads, head dim 128)")
                    .append(quick ? " [quick run]" : "").append('\n');
            sb.append(String.format(Locale.ROOT, "%9s %5s %7s %6s %10s %12s %11s %7s %14s%n", "context", "dtype",
                    "threads", "tokens/block", "ms/step", "kernel GB/s", "probe GB/s", "ratio", "kernel-only ms"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%9d %5s %7d %12d %10.3f %12.2f %11.2f %7.3f %14.3f%n",
                        r.context(), r.dtype(), r.threads(), r.tokensPerBlock(), r.msPerOp(), r.kernelGBps(),
                        r.probeGBps(), r.ratio(), r.kernelOnlyMs()));
            }
            for (Probe p : probes) {
                sb.append(String.format(Locale.ROOT, "probe: %d thread(s), %d MiB buffer: %.2f GB/s (%.3f ms/pass)%n",
                        p.threads(), p.bytes() >> 20, p.gbps(), p.msPerOp()));
            }
            return sb.toString();
        }

        /** A machine-readable summary (one JSON object). */
        public String json() {
            StringBuilder sb = new StringBuilder();
            sb.append("{\"benchmark\":\"attention\",\"quick\":").append(quick)
                    .append(",\"model\":{\"queryHeads\":").append(DecodeAttentionBench.QUERY_HEADS)
                    .append(",\"kvHeads\":").append(DecodeAttentionBench.KV_HEADS)
                    .append(",\"headDim\":").append(DecodeAttentionBench.HEAD_DIM)
                    .append("},\"probe\":[");
            for (int i = 0; i < probes.size(); i++) {
                Probe p = probes.get(i);
                sb.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                        "{\"threads\":%d,\"bytes\":%d,\"msPerOp\":%s,\"msError\":%s,\"gbps\":%s}", p.threads(),
                        p.bytes(), num(p.msPerOp()), num(p.msError()), num(p.gbps())));
            }
            sb.append("],\"decode\":[");
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                sb.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                        "{\"context\":%d,\"dtype\":\"%s\",\"threads\":%d,\"tokensPerBlock\":%d,\"msPerOp\":%s,"
                                + "\"msError\":%s,\"kernelGBps\":%s,\"probeGBps\":%s,\"ratio\":%s,"
                                + "\"kernelOnlyMsPerStep\":%s}",
                        r.context(), r.dtype(), r.threads(), r.tokensPerBlock(), num(r.msPerOp()), num(r.msError()),
                        num(r.kernelGBps()), num(r.probeGBps()), num(r.ratio()), num(r.kernelOnlyMs())));
            }
            return sb.append("]}").toString();
        }

        private static String num(double x) {
            return Double.isFinite(x) ? String.format(Locale.ROOT, "%.4f", x) : "null";
        }
    }

    /**
     * Runs both benchmarks. Default: 32k tokens, f16, 1 and 2 threads (issue #13's configuration), the benchmarks'
     * iterations (2 x 1 s warmup, 3 x 1 s measurement); quick: the same with 1 x 0.5 s warmup and 2 x 0.5 s
     * measurement; full: every context (4k / 32k / 128k) and element type the benchmark declares.
     * JMH's progress goes to {@code progress}.
     */
    public static Report run(RunSize size, String[] tokensPerBlock, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(Pattern.quote(DecodeAttentionBench.class.getName() + ".decode") + "$")
                .include(Pattern.quote(DecodeAttentionBench.class.getName() + ".decodeKernelOnly") + "$")
                .include(Pattern.quote(BandwidthProbeBench.class.getName() + ".probe") + "$")
                .param("tokensPerBlock", tokensPerBlock);
        if (!size.full()) {
            options.param("context", "32768").param("dtype", "F16");
        }
        if (quick) {
            JmhRunner.quick(options);
        }
        Collection<RunResult> results = JmhRunner.run(options, progress, DecodeAttentionBench.class, BandwidthProbeBench.class);
        List<Probe> probes = new ArrayList<>();
        List<RunResult> decodes = new ArrayList<>();
        java.util.Map<String, Double> kernelOnly = new java.util.HashMap<>();
        for (RunResult r : results) {
            String name = r.getParams().getBenchmark();
            if (name.endsWith(".decodeKernelOnly")) {
                kernelOnly.put(key(r), r.getPrimaryResult().getScore());
            } else if (name.endsWith(".probe")) {
                long bytes = Long.parseLong(r.getParams().getParam("mib")) << 20;
                double ms = r.getPrimaryResult().getScore();
                probes.add(new Probe(Integer.parseInt(r.getParams().getParam("threads")), bytes, ms,
                        r.getPrimaryResult().getScoreError(), gbps(bytes, ms)));
            } else {
                decodes.add(r);
            }
        }
        List<Row> rows = new ArrayList<>();
        for (RunResult r : decodes) {
            int context = Integer.parseInt(r.getParams().getParam("context"));
            String dtype = r.getParams().getParam("dtype");
            int threads = Integer.parseInt(r.getParams().getParam("threads"));
            int tpb = Integer.parseInt(r.getParams().getParam("tokensPerBlock"));
            double ms = r.getPrimaryResult().getScore();
            double probe = probes.stream().filter(p -> p.threads() == threads).mapToDouble(Probe::gbps)
                    .findFirst().orElse(Double.NaN);
            rows.add(new Row(context, dtype, threads, tpb, ms, r.getPrimaryResult().getScoreError(),
                    gbps(DecodeAttentionBench.kvBytes(context, DType.valueOf(dtype)), ms), probe,
                    kernelOnly.getOrDefault(key(r), Double.NaN)));
        }
        rows.sort(Comparator.comparingInt(Row::context).thenComparing(Row::dtype, Comparator.reverseOrder())
                .thenComparingInt(Row::threads).thenComparingInt(Row::tokensPerBlock));
        probes.sort(Comparator.comparingInt(Probe::threads));
        return new Report(quick, probes, rows);
    }

    private static String key(RunResult r) {
        var p = r.getParams();
        return p.getParam("context") + "/" + p.getParam("dtype") + "/" + p.getParam("threads") + "/"
                + p.getParam("tokensPerBlock");
    }

    private static double gbps(long bytes, double msPerOp) {
        return bytes / (msPerOp * 1e-3) / 1e9;
    }
}
