package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.model.KvDtypes;
import picocli.CommandLine.Option;

/** Options every {@code kvslab stress} test takes. */
final class StressOptions {
    @Option(names = "--dtype", paramLabel = "TYPE", converter = KvDtypesConverter.class, defaultValue = "f16",
            description = "stored element types (default ${DEFAULT-VALUE}): " + KvDtypesConverter.ALLOWED)
    KvDtypes dtype;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "default ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--attention", paramLabel = "NAME", defaultValue = "kernel",
            description = "decode attention backend checked against the plain-Java reference: kernel (default) or "
                    + "java (the reference itself; slow, and churn then skips attention checks)")
    String attention;

    @Option(names = "--full", description = "the big run: 1M tokens over every layer (long), 30 s (churn)")
    boolean full;

    @Option(names = "--json", description = "print a JSON summary instead of text (no progress bar)")
    boolean json;

    @Option(names = {"-q", "--quiet", "--no-progress"}, description = "no progress bar")
    boolean quiet;
}
