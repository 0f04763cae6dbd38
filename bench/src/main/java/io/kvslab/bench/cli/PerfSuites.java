package io.kvslab.bench.cli;

import io.kvslab.bench.jmh.AllocBenchRunner;
import io.kvslab.bench.jmh.CompactionBenchRunner;
import io.kvslab.bench.jmh.PolicyCostBenchRunner;
import org.openjdk.jmh.runner.RunnerException;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Set;

/**
 * The {@code kvslab bench} suites of the memory and policy benchmarks: {@code alloc}, {@code compaction},
 * {@code policy}. Each runs its JMH benchmark through the Runner API (progress on stderr) and prints a table with
 * ratios, or JSON, on stdout.
 */
final class PerfSuites {
    private PerfSuites() {}

    /** A JMH run producing a table and JSON. */
    interface Report {
        String table();

        String json();
    }

    @FunctionalInterface
    interface Run {
        Report run(boolean quick, PrintStream progress) throws RunnerException;
    }

    static BenchCommand.Suite alloc() {
        return new Jmh("alloc", "block alloc + free: KVSlab slab allocator vs Netty pooled vs one Arena per block (JMH)",
                (quick, progress) -> {
                    AllocBenchRunner.Report r = AllocBenchRunner.run(quick, progress);
                    return report(r.table(), r.json());
                });
    }

    static BenchCommand.Suite compaction() {
        return new Jmh("compaction", "compaction bytes moved per second vs a block-by-block memcpy baseline (JMH)",
                (quick, progress) -> {
                    CompactionBenchRunner.Report r = CompactionBenchRunner.run(quick, progress);
                    return report(r.table(), r.json());
                });
    }

    static BenchCommand.Suite policy() {
        return new Jmh("policy", "CriticalAdaKV compress vs prefill attention of the same Llama-3-8B layer, 4k/8k/32k "
                + "(JMH; 32k prefill takes about a minute per call on 2 cores)",
                (quick, progress) -> {
                    PolicyCostBenchRunner.Report r = PolicyCostBenchRunner.run(quick, progress);
                    return report(r.table(), r.json());
                });
    }

    private static Report report(String table, String json) {
        return new Report() {
            @Override
            public String table() {
                return table;
            }

            @Override
            public String json() {
                return json;
            }
        };
    }

    private record Jmh(String name, String summary, Run runner) implements BenchCommand.Suite {
        @Override
        public String usage() {
            return "kvslab bench " + name + " [--json] [--quick]   (--quick: shorter runs; JMH progress goes to "
                    + "stderr, the table or JSON to stdout)";
        }

        @Override
        public int run(String[] args) throws UsageException {
            if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
                System.out.println(usage());
                return 0;
            }
            Args a = new Args(args, Set.of("json", "quick"));
            boolean json = a.flag("json");
            boolean quick = a.flag("quick");
            a.finish();
            if (!a.positional().isEmpty()) {
                throw new UsageException("unexpected argument '" + a.positional().getFirst() + "'");
            }
            Report r;
            try {
                r = runner.run(quick, System.err);
            } catch (RunnerException e) {
                System.err.println("kvslab bench " + name + ": JMH run failed: " + e.getMessage());
                return 1;
            }
            System.out.println(json ? r.json() : r.table());
            return 0;
        }
    }
}
