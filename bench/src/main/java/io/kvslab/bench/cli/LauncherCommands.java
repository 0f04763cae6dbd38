package io.kvslab.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.util.concurrent.Callable;

/**
 * {@code test} and {@code build}: run by the shell launcher ({@code ./kvslab}) before Java starts, listed here so
 * that {@code kvslab help} shows them. Reaching them inside the jar means the jar was started directly.
 */
final class LauncherCommands {
    private LauncherCommands() {}

    @Command(name = "test", mixinStandardHelpOptions = true,
            description = {"Run the whole test suite (mvn clean verify, then the embedding check; about 8.5 min on 2 cores).",
                    "Extra arguments go to Maven, e.g. ./kvslab test -o -Dtest=SnapshotTest.",
                    "Handled by the ./kvslab shell launcher."})
    static final class Test implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            return launcherOnly(spec);
        }
    }

    @Command(name = "build", mixinStandardHelpOptions = true,
            description = {"Build the native library and the jar (mvn -q package, tests skipped).",
                    "The launcher also builds by itself on first use and whenever a source is newer than the jar.",
                    "Handled by the ./kvslab shell launcher."})
    static final class Build implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Override
        public Integer call() {
            return launcherOnly(spec);
        }
    }

    private static int launcherOnly(CommandSpec spec) {
        spec.commandLine().getErr().println("kvslab " + spec.name() + ": run it through the ./kvslab launcher "
                + "(it calls Maven); the jar itself cannot");
        return Failures.USAGE;
    }
}
