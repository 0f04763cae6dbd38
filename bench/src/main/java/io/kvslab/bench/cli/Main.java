package io.kvslab.bench.cli;

import picocli.CommandLine;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * Entry point of the {@code kvslab} command line. The commands are picocli classes registered as subcommands of
 * {@link KvslabCommand}; {@link Failures} turns every error into one line and an exit code (2: usage, 1: failure).
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs one command line on System.out / System.err and returns the exit code. */
    static int run(String... args) {
        return execute(writer(System.out), writer(System.err), args);
    }

    /** Runs one command line on the given streams (tests capture them) and returns the exit code. */
    static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = commandLine(out, err);
        try {
            return cl.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new KvslabCommand());
        BenchCommand.addSuites(cl.getSubcommands().get("bench"));
        Failures failures = new Failures();
        cl.setOut(out);
        cl.setErr(err);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setUsageHelpWidth(110);
        cl.setParameterExceptionHandler(failures);
        cl.setExecutionExceptionHandler(failures);
        return cl;
    }

    private static PrintWriter writer(PrintStream s) {
        return new PrintWriter(new java.io.OutputStreamWriter(s, StandardCharsets.UTF_8), true);
    }
}
