package io.kvslab.bench.jmh;

import io.kvslab.bench.report.Json;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Runs {@link CompactionBench} and relates compaction's copy rate to the block-by-block memcpy baseline of the
 * same run: ratio = compaction bytes moved per second / memcpy bytes per second.
 */
public final class CompactionBenchRunner {
    private CompactionBenchRunner() {}

    /** One fragmentation level. */
    public record Row(double freeFraction, int slabs, double compactionsPerSecond, double msPerCompaction,
                      double bytesMovedPerSecond, double slabsReleasedPerCompaction, double memcpyBytesPerSecond) {
        public double ratio() {
            return bytesMovedPerSecond / memcpyBytesPerSecond;
        }
    }

    public record Report(boolean quick, int blockBytes, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                    "Compaction of 16 MiB slabs of %d-byte blocks after freeing a random fraction (ratio = compaction "
                            + "GB/s / block-by-block memcpy GB/s)%s%n", blockBytes, quick ? " [quick run]" : ""));
            sb.append(String.format(Locale.ROOT, "%6s %6s %12s %12s %13s %12s %8s%n", "freed", "slabs",
                    "ms/compact", "moved GB/s", "slabs freed", "memcpy GB/s", "ratio"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%6.2f %6d %12.2f %12.2f %13.1f %12.2f %8.3f%n",
                        r.freeFraction(), r.slabs(), r.msPerCompaction(), r.bytesMovedPerSecond() / 1e9,
                        r.slabsReleasedPerCompaction(), r.memcpyBytesPerSecond() / 1e9, r.ratio()));
            }
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("freeFraction", r.freeFraction()).put("slabs", r.slabs())
                        .put("msPerCompaction", r.msPerCompaction())
                        .put("bytesMovedPerSecond", r.bytesMovedPerSecond())
                        .put("slabsReleasedPerCompaction", r.slabsReleasedPerCompaction())
                        .put("memcpyBytesPerSecond", r.memcpyBytesPerSecond()).put("ratio", r.ratio()));
            }
            return Json.object().put("benchmark", "compaction").put("quick", quick).put("blockBytes", blockBytes)
                    .put("rows", list).toString();
        }
    }

    /**
     * Default and full: the benchmark's iterations (3 x 1 s warmup, 5 x 1 s measurement), its one configuration;
     * quick: 1 x 0.5 s warmup, 2 x 0.5 s measurement.
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(Pattern.quote(CompactionBench.class.getName()) + "\\.");
        if (quick) {
            JmhRunner.quick(options);
        }
        Collection<RunResult> results = JmhRunner.run(options, progress, CompactionBench.class);
        Map<String, RunResult> compact = new HashMap<>();
        Map<String, RunResult> memcpy = new HashMap<>();
        int blockBytes = 0;
        for (RunResult r : results) {
            String key = r.getParams().getParam("freeFraction") + "/" + r.getParams().getParam("slabs");
            blockBytes = Integer.parseInt(r.getParams().getParam("blockBytes"));
            (r.getParams().getBenchmark().endsWith(".compact") ? compact : memcpy).put(key, r);
        }
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, RunResult> e : compact.entrySet()) {
            RunResult c = e.getValue();
            RunResult m = memcpy.get(e.getKey());
            double perSecond = c.getPrimaryResult().getScore();
            double moved = c.getSecondaryResults().get("bytesMoved").getScore();
            double released = c.getSecondaryResults().get("slabsReleased").getScore();
            double copy = m == null ? Double.NaN : m.getSecondaryResults().get("bytesMoved").getScore();
            rows.add(new Row(Double.parseDouble(c.getParams().getParam("freeFraction")),
                    Integer.parseInt(c.getParams().getParam("slabs")), perSecond, 1000 / perSecond, moved,
                    released / perSecond, copy));
        }
        rows.sort((a, b) -> Double.compare(a.freeFraction(), b.freeFraction()));
        return new Report(quick, blockBytes, rows);
    }
}
