package io.kvslab.bench.cli;

import io.kvslab.bench.jmh.BenchSuite;
import io.kvslab.bench.jmh.RunSize;
import io.kvslab.bench.jmh.SuiteReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.List;
import java.util.concurrent.Callable;

/** One {@code kvslab bench NAME} suite: runs its JMH benchmarks and prints the table or JSON. */
@Command(mixinStandardHelpOptions = true, sortOptions = false)
final class SuiteCommand implements Callable<Integer> {
    private final BenchSuite suite;

    @Spec
    private CommandSpec spec;

    @Option(names = "--quick", description = "the default configurations with short iterations (a smoke run)")
    private boolean quick;

    @Option(names = "--full", description = "every configuration the benchmarks declare, with their own iterations "
            + "(several minutes)")
    private boolean full;

    @Option(names = "--json", description = "print JSON instead of the table")
    private boolean json;

    @Option(names = "--tokens-per-block", paramLabel = "LIST", split = ",", defaultValue = "32",
            description = "block sizes to compare, comma-separated (default ${DEFAULT-VALUE})")
    private List<Integer> tokensPerBlock;

    SuiteCommand(BenchSuite suite) {
        this.suite = suite;
    }

    @Override
    public Integer call() throws Exception {
        // only the attention suite has the option; the others never see it (null)
        List<Integer> blocks = tokensPerBlock != null ? tokensPerBlock : List.of(32);
        for (int t : blocks) {
            Check.range(spec, "--tokens-per-block", t, 1, 65536);
        }
        if (quick && full) {
            throw new ParameterException(spec.commandLine(), "--quick and --full exclude each other");
        }
        RunSize size = quick ? RunSize.QUICK : full ? RunSize.FULL : RunSize.DEFAULT;
        SuiteReport report = suite.run(size, blocks.stream().map(String::valueOf).toList(), System.err);
        spec.commandLine().getOut().println(json ? report.json() : report.table());
        return 0;
    }
}
