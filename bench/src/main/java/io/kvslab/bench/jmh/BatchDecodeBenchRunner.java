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
 * Runs {@link BatchDecodeBench} (batched call and per-sequence loop) and {@link BandwidthProbeBench} together, in
 * {@value #ROUNDS} rounds one after the other (batched, loop, probe, then again), so a machine whose load drifts
 * shows it as a difference between rounds rather than as a difference between the two ways of calling. Reports
 * each configuration's K+V GB/s for both ways, the batched/loop speed-up and both against the probe.
 */
public final class BatchDecodeBenchRunner {
    static final int ROUNDS = 2;

    private BatchDecodeBenchRunner() {}

    /** One configuration in one round. */
    public record Row(int round, int batch, int context, String dtype, int threads, double batchedMs, double loopMs,
                      double batchedGBps, double loopGBps, double probeGBps) {
        /** How many times faster the batched call is than the loop. */
        public double speedup() {
            return loopMs / batchedMs;
        }
    }

    public record Report(boolean quick, List<Row> rows) implements SuiteReport {
        @Override
        public String table() {
            StringBuilder sb = new StringBuilder();
            sb.append("Batched decode attention, one Llama-3-8B layer (32 q heads, 8 kv heads, head dim 128, 32 "
                    + "tokens/block), batch x context tokens").append(quick ? " [quick run]" : "").append('\n');
            sb.append(String.format(Locale.ROOT, "%5s %5s %7s %5s %7s %11s %9s %12s %10s %10s %8s %8s %8s%n",
                    "round", "batch", "context", "dtype", "threads", "batched ms", "loop ms", "batched GB/s",
                    "loop GB/s", "probe GB/s", "speedup", "b/probe", "l/probe"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT,
                        "%5d %5d %7d %5s %7d %11.3f %9.3f %12.2f %10.2f %10.2f %8.3f %8.3f %8.3f%n", r.round(),
                        r.batch(), r.context(), r.dtype(), r.threads(), r.batchedMs(), r.loopMs(), r.batchedGBps(),
                        r.loopGBps(), r.probeGBps(), r.speedup(), r.batchedGBps() / r.probeGBps(),
                        r.loopGBps() / r.probeGBps()));
            }
            return sb.toString();
        }

        @Override
        public String json() {
            StringBuilder sb = new StringBuilder("{\"benchmark\":\"batch\",\"quick\":").append(quick)
                    .append(",\"rows\":[");
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                sb.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT,
                        "{\"round\":%d,\"batch\":%d,\"context\":%d,\"dtype\":\"%s\",\"threads\":%d,\"batchedMs\":%s,"
                                + "\"loopMs\":%s,\"batchedGBps\":%s,\"loopGBps\":%s,\"probeGBps\":%s,\"speedup\":%s}",
                        r.round(), r.batch(), r.context(), r.dtype(), r.threads(), num(r.batchedMs()),
                        num(r.loopMs()), num(r.batchedGBps()), num(r.loopGBps()), num(r.probeGBps()),
                        num(r.speedup())));
            }
            return sb.append("]}").toString();
        }

        private static String num(double x) {
            return Double.isFinite(x) ? String.format(Locale.ROOT, "%.4f", x) : "null";
        }
    }

    /**
     * Default: one round of batches 1 and 8 at 2k and 8k with the benchmarks' iterations (2 x 1 s warmup, 3 x 1 s
     * measurement); quick: the same with 1 x 0.5 s warmup and 2 x 0.5 s measurement; full: {@link #ROUNDS} rounds
     * of batches 1, 8 and 32.
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        List<Row> rows = new ArrayList<>();
        for (int round = 1; round <= (size.full() ? ROUNDS : 1); round++) {
            ChainedOptionsBuilder options = new OptionsBuilder()
                    .include(Pattern.quote(BatchDecodeBench.class.getName()) + "\\.(batched|loop)$")
                    .include(Pattern.quote(BandwidthProbeBench.class.getName() + ".probe") + "$")
                    .param("threads", "2");
            if (!size.full()) {
                options.param("batch", "1", "8");
            }
            if (quick) {
                JmhRunner.quick(options);
            }
            Collection<RunResult> results = JmhRunner.run(options, progress, BatchDecodeBench.class,
                    BandwidthProbeBench.class);
            rows.addAll(rows(round, results));
        }
        rows.sort(Comparator.comparingInt(Row::context).thenComparingInt(Row::batch).thenComparingInt(Row::round));
        return new Report(quick, rows);
    }

    private static List<Row> rows(int round, Collection<RunResult> results) {
        double probe = Double.NaN;
        List<RunResult> batched = new ArrayList<>();
        List<RunResult> loops = new ArrayList<>();
        for (RunResult r : results) {
            String name = r.getParams().getBenchmark();
            if (name.endsWith(".probe")) {
                long bytes = Long.parseLong(r.getParams().getParam("mib")) << 20;
                probe = gbps(bytes, r.getPrimaryResult().getScore());
            } else if (name.endsWith(".batched")) {
                batched.add(r);
            } else {
                loops.add(r);
            }
        }
        List<Row> rows = new ArrayList<>();
        for (RunResult b : batched) {
            int batch = Integer.parseInt(b.getParams().getParam("batch"));
            int context = Integer.parseInt(b.getParams().getParam("context"));
            String dtype = b.getParams().getParam("dtype");
            int threads = Integer.parseInt(b.getParams().getParam("threads"));
            double loopMs = loops.stream().filter(l -> l.getParams().getParam("batch").equals(b.getParams().getParam("batch"))
                            && l.getParams().getParam("context").equals(b.getParams().getParam("context")))
                    .mapToDouble(l -> l.getPrimaryResult().getScore()).findFirst().orElse(Double.NaN);
            double ms = b.getPrimaryResult().getScore();
            long bytes = BatchDecodeBench.kvBytes(batch, context, DType.valueOf(dtype));
            rows.add(new Row(round, batch, context, dtype, threads, ms, loopMs, gbps(bytes, ms), gbps(bytes, loopMs),
                    probe));
        }
        return rows;
    }

    private static double gbps(long bytes, double msPerOp) {
        return bytes / (msPerOp * 1e-3) / 1e9;
    }
}
