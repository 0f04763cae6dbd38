package io.kvslab.bench.cli;

import picocli.CommandLine;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

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
        CommandLine cl = commandLine(out, err, args);
        try {
            return cl.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /**
     * The command tree for {@code args}. picocli builds a command's model by reflection when it is added, which for
     * all of them costs more CPU than a short {@code generate} run: when the command line names a command, only that
     * one is added (the others are never reached). Without one, with a misspelled one, {@code help} or {@code generate-completion}, all of them are,
     * so that usage, suggestions and {@code help NAME} see the whole list. {@code --version} alone (no command, no
     * {@code --help}) needs none of them: it cost 0.8 s of CPU to build them all for two lines of text.
     */
    static CommandLine commandLine(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new KvslabCommand());
        String named = Arrays.stream(args).filter(a -> !a.startsWith("-")).findFirst().orElse(null);
        boolean onlyNamed = named != null && !named.equals("help") && !named.equals("generate-completion")
                && KvslabCommand.COMMANDS.stream().anyMatch(c -> name(c).equals(named));
        List<String> options = List.of(args);
        boolean versionOnly = named == null && (options.contains("--version") || options.contains("-V"))
                && !options.contains("--help") && !options.contains("-h");
        for (Class<?> c : KvslabCommand.COMMANDS) {
            if (!versionOnly && (!onlyNamed || name(c).equals(named))) {
                cl.addSubcommand(name(c), c);
            }
        }
        CommandLine bench = cl.getSubcommands().get("bench");
        if (bench != null) {
            BenchCommand.addSuites(bench);
        }
        Failures failures = new Failures();
        cl.setOut(out);
        cl.setErr(err);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setUsageHelpWidth(110);
        cl.setParameterExceptionHandler(failures);
        cl.setExecutionExceptionHandler(failures);
        return cl;
    }

    private static String name(Class<?> command) {
        return command.getAnnotation(CommandLine.Command.class).name();
    }

    private static PrintWriter writer(PrintStream s) {
        return new PrintWriter(new java.io.OutputStreamWriter(s, StandardCharsets.UTF_8), true);
    }
}
