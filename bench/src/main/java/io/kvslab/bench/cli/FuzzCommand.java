package io.kvslab.bench.cli;

import io.kvslab.bench.fuzz.FuzzCampaign;
import io.kvslab.bench.fuzz.FuzzReport;
import io.kvslab.bench.fuzz.FuzzTarget;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.time.Duration;
import java.util.concurrent.Callable;

/**
 * {@code kvslab fuzz snapshot|gguf|llama2c --cases N --seed S [--json]}: a fuzz campaign of the file readers
 * ({@link FuzzCampaign}).
 */
@Command(name = "fuzz", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Fuzz a file reader with mutated files: every case must be read or rejected with a typed "
                + "exception, never crash or hang. Exit 1 if a case failed.")
final class FuzzCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Parameters(paramLabel = "TARGET", description = "what to fuzz: snapshot, gguf, llama2c")
    private FuzzTarget target;

    @Option(names = "--cases", paramLabel = "N", converter = SizeConverter.class, defaultValue = "1000",
            description = "mutated files to try (default ${DEFAULT-VALUE}; suffixes k, m)")
    private long cases;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "1", description = "default ${DEFAULT-VALUE}")
    private long seed;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "per-case time limit; a case still running then counts as a hang (default ${DEFAULT-VALUE})")
    private double timeoutSeconds;

    @Option(names = "--json", description = "print the report as JSON")
    private boolean json;

    @Option(names = {"-q", "--quiet"}, description = "no progress on stderr")
    private boolean quiet;

    @Override
    public Integer call() {
        Check.range(spec, "--cases", cases, 1, Long.MAX_VALUE);
        Check.range(spec, "--timeout", timeoutSeconds, 0.001, 24 * 3600.0);
        PrintStream progress = json || quiet ? null : System.err;
        FuzzReport report = FuzzCampaign.run(target, cases, seed,
                Duration.ofNanos(Math.round(timeoutSeconds * 1e9)), progress);
        spec.commandLine().getOut().println(json ? report.toJson() : report.summary());
        return report.clean() ? 0 : 1;
    }
}
