package io.kvslab.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.util.List;
import java.util.concurrent.Callable;

/**
 * The {@code kvslab} root command: the list of commands, {@code --help}, {@code --version}, {@code -v}. The commands
 * are in {@link #COMMANDS}, not in the annotation, so that {@link Main} can build only the one a command line names.
 */
@Command(name = "kvslab", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
        description = "KVSlab: an off-heap KV cache for LLM inference, its model runner, evaluations and benchmarks.",
        footer = {"", "Exit codes: 0 ok, 1 the operation failed (or a stress invariant was violated), 2 usage error.",
                "Run 'kvslab COMMAND --help' for a command's options. KVSLAB_DEBUG=1 or -v prints stack traces.",
                "Bash completion: source <(./kvslab generate-completion)"})
final class KvslabCommand implements Callable<Integer> {
    /** Every command in the order {@code kvslab --help} lists them. */
    static final List<Class<?>> COMMANDS = List.of(DemoCommand.class, GenerateCommand.class, EvalCommand.class,
            PodCommand.class, BenchCommand.class, FootprintCommand.class, StressCommand.class, SnapshotCommand.class,
            FuzzCommand.class, io.kvslab.bench.serve.ServeCommand.class, io.kvslab.bench.serve.LoadtestCommand.class,
            LauncherCommands.Test.class, LauncherCommands.Build.class, picocli.CommandLine.HelpCommand.class,
            picocli.AutoComplete.GenerateCompletion.class);

    @Spec
    private CommandSpec spec;

    @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
            description = "print the stack trace of an error (also: environment KVSLAB_DEBUG=1)")
    private boolean verbose;

    boolean verbose() {
        return verbose;
    }

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return Failures.USAGE;
    }
}
