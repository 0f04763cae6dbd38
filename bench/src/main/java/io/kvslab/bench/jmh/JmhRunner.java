package io.kvslab.bench.jmh;

import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The one way the {@code kvslab bench} suites run JMH (through its Runner API, progress on {@code progress}).
 * The forked JVM gets this JVM's flags plus the benchmark classes' {@code @Fork(jvmArgsAppend)} flags once each:
 * JMH by itself would pass the launcher's flags and then append the same ones again.
 */
final class JmhRunner {
    private JmhRunner() {}

    /** Short iterations for {@code --quick}: 1 x 0.5 s warm-up, 2 x 0.5 s measurement. */
    static void quick(ChainedOptionsBuilder options) {
        options.warmupIterations(1).warmupTime(TimeValue.milliseconds(500))
                .measurementIterations(2).measurementTime(TimeValue.milliseconds(500));
    }

    /**
     * The iterations of a suite without per-suite settings: quick as {@link #quick}; default 1 x 1 s warm-up and
     * 2 x 1 s measurement; full the benchmark class's own.
     */
    static void iterations(ChainedOptionsBuilder options, RunSize size) {
        switch (size) {
            case QUICK -> quick(options);
            case DEFAULT -> options.warmupIterations(1).warmupTime(TimeValue.seconds(1))
                    .measurementIterations(2).measurementTime(TimeValue.seconds(1));
            case FULL -> { }
        }
    }

    static Collection<RunResult> run(ChainedOptionsBuilder options, PrintStream progress, Class<?>... benchmarks)
            throws RunnerException {
        Set<String> flags = new LinkedHashSet<>(ManagementFactory.getRuntimeMXBean().getInputArguments());
        for (Class<?> b : benchmarks) {
            Fork fork = b.getAnnotation(Fork.class);
            if (fork != null) {
                flags.addAll(List.of(fork.jvmArgsAppend()));
            }
        }
        options.shouldFailOnError(true).jvmArgs(flags.toArray(String[]::new)).jvmArgsAppend();
        return new Runner(options.build(), OutputFormatFactory.createFormatInstance(progress, VerboseMode.NORMAL))
                .run();
    }
}
