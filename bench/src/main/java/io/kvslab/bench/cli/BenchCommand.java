package io.kvslab.bench.cli;

import io.kvslab.bench.jmh.BenchSuite;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code kvslab bench NAME}: one subcommand per {@link BenchSuite}, all handled by {@link SuiteCommand}. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Run a JMH benchmark suite: bench NAME [--quick] [--json]. JMH's progress goes to stderr, the "
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
        bench.addSubcommand("serve-sim", new CommandLine(new io.kvslab.bench.serve.ServeSimCommand()));
    }
}
