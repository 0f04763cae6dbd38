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
import java.util.regex.Pattern;

/**
 * Runs {@link AllocBench} through the JMH Runner API and relates every allocator to KVSlab's slab allocator under
 * the same pattern (single alloc+free, or a batch of 256 held then freed): ratio = ns per block / slab's ns per
 * block.
 */
public final class AllocBenchRunner {
    private AllocBenchRunner() {}

    /** Benchmark method -> (pattern, allocator label, the slab method it is compared with). */
    private static final Map<String, String[]> METHODS = Map.ofEntries(
            Map.entry("slab", new String[] {"single", "KVSlab SlabAllocator", "slab"}),
            Map.entry("slabAppendCall", new String[] {"single", "KVSlab, an append's call (FreshBlocks)", "slab"}),
            Map.entry("netty", new String[] {"single", "Netty pooled (default: no thread cache)", "slab"}),
            Map.entry("nettyThreadCache", new String[] {"single", "Netty pooled + thread cache", "slab"}),
            Map.entry("arenaConfined", new String[] {"single", "Arena.ofConfined per block", "slab"}),
            Map.entry("arenaShared", new String[] {"single", "Arena.ofShared per block", "slab"}),
            Map.entry("slabBatch", new String[] {"batch256", "KVSlab SlabAllocator (bulk)", "slabBatch"}),
            Map.entry("slabBatchOneByOne", new String[] {"batch256", "KVSlab SlabAllocator (one by one)", "slabBatch"}),
            Map.entry("nettyBatch", new String[] {"batch256", "Netty pooled (default: no thread cache)", "slabBatch"}),
            Map.entry("nettyThreadCacheBatch", new String[] {"batch256", "Netty pooled + thread cache", "slabBatch"}),
            Map.entry("arenaConfinedBatch", new String[] {"batch256", "Arena.ofConfined per block", "slabBatch"}));

    private static final List<String> ORDER = List.of("slab", "slabAppendCall", "netty", "nettyThreadCache",
            "arenaConfined", "arenaShared", "slabBatch", "slabBatchOneByOne", "nettyBatch", "nettyThreadCacheBatch",
            "arenaConfinedBatch");

    /** Threads allocating from one shared allocator at once ({@link AllocThreadsBench}). */
    static final int[] THREADS = {1, 2, 4};

    /**
     * One allocator under one pattern. For the {@code threadsN} patterns the ratio is ns per block at N threads
     * over the same allocator's ns per block at one thread (1.0 = no slowdown from sharing), and {@code cpuNsPerBlock}
     * / {@code cpuRatio} are the same in CPU time per thread (NaN for the other patterns): wall time also counts the
     * time a thread waited for a core, which on a machine with as many cores as threads is any other process's time
     * (see {@link AllocThreadsBench}).
     */
    public record Row(String method, String pattern, String allocator, double nsPerBlock, double error, double ratio,
                      double cpuNsPerBlock, double cpuRatio) {
        Row(String method, String pattern, String allocator, double nsPerBlock, double error, double ratio) {
            this(method, pattern, allocator, nsPerBlock, error, ratio, Double.NaN, Double.NaN);
        }
    }

    public record Report(boolean quick, int blockBytes, List<Row> rows) implements SuiteReport {
        public String table() {
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                    "Block alloc + free, %d-byte blocks, ns per block (ratio = / KVSlab slab allocator, same pattern)%s%n",
                    blockBytes, quick ? " [quick run]" : ""));
            sb.append(String.format(Locale.ROOT, "%-9s %-42s %12s %10s %9s %12s %9s%n", "pattern", "allocator",
                    "ns/block", "+-", "ratio", "cpu ns/block", "cpu ratio"));
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%-9s %-42s %12.1f %10s %9.2f%s%n", r.pattern(), r.allocator(),
                        r.nsPerBlock(), Double.isFinite(r.error()) ? String.format(Locale.ROOT, "%.1f", r.error())
                                : "-", r.ratio(), Double.isNaN(r.cpuNsPerBlock()) ? ""
                                : String.format(Locale.ROOT, " %12.1f %9.2f", r.cpuNsPerBlock(), r.cpuRatio())));
            }
            sb.append(String.format(Locale.ROOT, "threadsN ratios are to the same allocator at one thread; cpu = "
                    + "per-thread CPU time (time spent waiting for a core not counted)%n"));
            return sb.toString();
        }

        public String json() {
            List<Object> list = new ArrayList<>();
            for (Row r : rows) {
                list.add(Json.object().put("method", r.method()).put("pattern", r.pattern())
                        .put("allocator", r.allocator()).put("nsPerBlock", r.nsPerBlock()).put("error", r.error())
                        .put("ratioToSlab", r.ratio()).put("cpuNsPerBlock", r.cpuNsPerBlock())
                        .put("cpuRatio", r.cpuRatio()));
            }
            return Json.object().put("benchmark", "alloc").put("quick", quick).put("blockBytes", blockBytes)
                    .put("rows", list).toString();
        }
    }

    /**
     * The share of wall time the benchmark's threads were on a core: their CPU time over their wall time, both
     * summed over threads and iterations ({@link AllocThreadsBench.CpuClock}); NaN when the counters are missing.
     */
    static double cpuShare(RunResult r) {
        var secondary = r.getSecondaryResults();
        if (!secondary.containsKey("cpuNs") || !secondary.containsKey("wallNs")) {
            return Double.NaN;
        }
        double wall = secondary.get("wallNs").getScore();
        return wall > 0 ? secondary.get("cpuNs").getScore() / wall : Double.NaN;
    }

    /**
     * Default: 1 x 1 s warmup, 2 x 1 s measurement per benchmark; quick: 1 x 0.5 s warmup, 2 x 0.5 s measurement;
     * full: the benchmarks' own iterations (3 x 1 s, 5 x 1 s).
     */
    public static Report run(RunSize size, PrintStream progress) throws RunnerException {
        boolean quick = size.quick();
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(Pattern.quote(AllocBench.class.getName()) + "\\.");
        JmhRunner.iterations(options, size);
        Collection<RunResult> results = JmhRunner.run(options, progress, AllocBench.class);
        java.util.HashMap<String, double[]> score = new java.util.HashMap<>();
        int blockBytes = 0;
        List<Row> threaded = new ArrayList<>();
        java.util.HashMap<String, Double> oneThread = new java.util.HashMap<>();
        java.util.HashMap<String, Double> oneThreadCpu = new java.util.HashMap<>();
        for (int threads : THREADS) {
            ChainedOptionsBuilder t = new OptionsBuilder()
                    .include(Pattern.quote(AllocThreadsBench.class.getName()) + "\\.").threads(threads);
            JmhRunner.iterations(t, size);
            for (RunResult r : JmhRunner.run(t, progress, AllocThreadsBench.class)) {
                String name = r.getParams().getBenchmark();
                String method = name.substring(name.lastIndexOf('.') + 1);
                double ns = r.getPrimaryResult().getScore();
                double cpuNs = ns * cpuShare(r);
                if (threads == 1) {
                    oneThread.put(method, ns);
                    oneThreadCpu.put(method, cpuNs);
                }
                Double base = oneThread.get(method);
                Double cpuBase = oneThreadCpu.get(method);
                threaded.add(new Row(method + "@" + threads, "threads" + threads, method.equals("slab")
                        ? "KVSlab SlabAllocator, shared" : "Netty pooled + thread cache, shared", ns,
                        r.getPrimaryResult().getScoreError(), base == null ? Double.NaN : ns / base, cpuNs,
                        cpuBase == null ? Double.NaN : cpuNs / cpuBase));
            }
        }
        for (RunResult r : results) {
            String name = r.getParams().getBenchmark();
            String method = name.substring(name.lastIndexOf('.') + 1);
            score.put(method, new double[] {r.getPrimaryResult().getScore(), r.getPrimaryResult().getScoreError()});
            blockBytes = Integer.parseInt(r.getParams().getParam("blockBytes"));
        }
        List<Row> rows = new ArrayList<>();
        for (String m : ORDER) {
            double[] s = score.get(m);
            if (s == null) {
                continue;
            }
            String[] meta = METHODS.get(m);
            double[] base = score.get(meta[2]);
            rows.add(new Row(m, meta[0], meta[1], s[0], s[1], base == null ? Double.NaN : s[0] / base[0]));
        }
        rows.addAll(threaded);
        return new Report(quick, blockBytes, rows);
    }
}
