package io.kvslab.bench.cli;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Entry point of the {@code kvslab} command line: {@code kvslab <command> [options]}.
 * Each command is one class implementing {@link Command}; register it in {@link #COMMANDS}.
 */
public final class Main {
    private static final Map<String, Command> COMMANDS = new LinkedHashMap<>();

    static {
        // one line per command, in the order --help lists them
        COMMANDS.put("demo", new DemoCommand());
        COMMANDS.put("generate", new GenerateCommand());
        COMMANDS.put("eval", new EvalCommand());
        COMMANDS.put("pod", new PodCommand());
        COMMANDS.put("bench", new BenchCommand());
        COMMANDS.put("footprint", new FootprintCommand());
        COMMANDS.put("stress", new StressCommand());
    }

    private Main() {}

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            usage();
            return args.length == 0 ? 2 : 0;
        }
        Command c = COMMANDS.get(args[0]);
        if (c == null) {
            System.err.println("kvslab: unknown command '" + args[0] + "'; commands: " + String.join(", ", COMMANDS.keySet()));
            return 2;
        }
        try {
            return c.run(Arrays.copyOfRange(args, 1, args.length));
        } catch (UsageException e) {
            System.err.println("kvslab " + args[0] + ": " + e.getMessage());
            System.err.println(c.usage());
            return 2;
        }
    }

    private static void usage() {
        System.out.println("usage: kvslab <command> [options]\n");
        COMMANDS.forEach((name, c) -> System.out.println("  " + name + "\t" + c.summary()));
        System.out.println("\n  kvslab <command> --help for its options");
    }
}
