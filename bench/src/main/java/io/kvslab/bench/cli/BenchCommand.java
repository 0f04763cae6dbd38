package io.kvslab.bench.cli;

import io.kvslab.bench.jmh.BenchSuite;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code kvslab bench NAME}: one subcommand per {@link BenchSuite}, all handled by {@link SuiteCommand}. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Run a benchmark suite: bench NAME [--quick|--full] [--json]; each default takes about a "
                + "minute on 2 cores, --full several. JMH's progress goes to stderr, the "
                + "table or JSON to stdout.")
final class BenchCommand {
    /** Adds the suites to the {@code bench} command line (picocli cannot list an enum's values as subcommands). */
    static void addSuites(CommandLine bench) {
        for (BenchSuite s : BenchSuite.values()) {
            CommandLine sub = new CommandLine(new SuiteCommand(s));
            sub.getCommandSpec().usageMessage().description(s.summary() + " (JMH; " + s.duration() + ").");
            if (s != BenchSuite.ATTENTION) {
                sub.getCommandSpec().remove(sub.getCommandSpec().findOption("--tokens-per-block"));
            }
            bench.addSubcommand(s.label(), sub);
        }
        // not JMH: prefix blocks through a Redis server (docs/distributed.md)
        bench.addSubcommand("redis", new CommandLine(new io.kvslab.bench.tier.RedisBenchCommand()));
        bench.addSubcommand("serve-sim", new CommandLine(new io.kvslab.bench.serve.ServeSimCommand()));
        // not JMH: decode and the read probe interleaved in one process (issue #13's ratio of medians)
        bench.addSubcommand("decode-vs-probe", new CommandLine(new DecodeVsProbeCommand()));
    }
}
