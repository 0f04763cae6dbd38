package io.kvslab.bench.cli;

import io.kvslab.bench.jmh.AttentionBenchRunner;
import org.openjdk.jmh.runner.RunnerException;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code kvslab bench <name> [options]}: runs a named benchmark suite. Add a suite by adding one entry to
 * {@link #SUITES}.
 */
final class BenchCommand implements Command {

    /** One named benchmark suite. */
    interface Suite {
        String summary();

        String usage();

        int run(String[] args) throws UsageException;
    }

    private static final Map<String, Suite> SUITES = new LinkedHashMap<>();

    static {
        SUITES.put("attention", new AttentionSuite());
        SUITES.put("alloc", PerfSuites.alloc());
        SUITES.put("compaction", PerfSuites.compaction());
        SUITES.put("policy", PerfSuites.policy());
    }

    @Override
    public String summary() {
        return "run a benchmark suite: bench <name> [options]; names: " + String.join(", ", SUITES.keySet());
    }

    @Override
    public String usage() {
        StringBuilder sb = new StringBuilder("usage: kvslab bench <name> [options]\n");
        SUITES.forEach((name, s) -> sb.append("  ").append(name).append("\t").append(s.summary()).append('\n')
                .append("      ").append(s.usage()).append('\n'));
        return sb.toString();
    }

    @Override
    public int run(String[] args) throws UsageException {
        if (args.length == 0) {
            throw new UsageException("name a benchmark suite: " + String.join(", ", SUITES.keySet()));
        }
        if (args[0].equals("--help") || args[0].equals("-h")) {
            System.out.println(usage());
            return 0;
        }
        Suite suite = SUITES.get(args[0]);
        if (suite == null) {
            throw new UsageException("unknown benchmark suite '" + args[0] + "'; available: "
                    + String.join(", ", SUITES.keySet()));
        }
        return suite.run(Arrays.copyOfRange(args, 1, args.length));
    }

    /** Decode attention (JMH) against the read-bandwidth probe. */
    static final class AttentionSuite implements Suite {
        @Override
        public String summary() {
            return "decode attention GB/s of one Llama-3-8B layer vs the machine's read bandwidth (JMH)";
        }

        @Override
        public String usage() {
            return "kvslab bench attention [--json] [--quick] [--tokens-per-block 32[,128...]]   (--quick: shorter "
                    + "iterations, contexts 4k and 32k only; JMH progress goes to stderr, the table or JSON to stdout)";
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
            String[] tokensPerBlock = a.string("tokens-per-block", "32").split(",");
            for (String t : tokensPerBlock) {
                if (!t.matches("[1-9][0-9]{0,4}")) {
                    throw new UsageException("--tokens-per-block takes comma-separated block sizes in [1, 65536], got '"
                            + t + "'");
                }
            }
            a.finish();
            if (!a.positional().isEmpty()) {
                throw new UsageException("unexpected argument '" + a.positional().get(0) + "'");
            }
            AttentionBenchRunner.Report report;
            try {
                report = AttentionBenchRunner.run(quick, tokensPerBlock, System.err);
            } catch (RunnerException e) {
                System.err.println("kvslab bench attention: JMH run failed: " + e.getMessage());
                return 1;
            }
            System.out.println(json ? report.json() : report.table());
            return 0;
        }
    }
}
