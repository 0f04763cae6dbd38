package io.kvslab.bench.cli;

import picocli.CommandLine.Option;

/** Options of {@code kvslab stress churn}. */
final class ChurnStressOptions {
    @Option(names = "--threads", paramLabel = "N", description = "worker threads (default: available processors)")
    Integer threads;

    @Option(names = "--duration", paramLabel = "SECONDS", description = "default 20; 30 with --full")
    Double duration;

    @Option(names = "--churn-model", paramLabel = "L:H:KV:D", defaultValue = "4:8:2:64",
            description = "geometry, default ${DEFAULT-VALUE}")
    String model;

    @Option(names = "--churn-tokens-per-block", paramLabel = "N", defaultValue = "16",
            description = "default ${DEFAULT-VALUE} (small blocks: many partial tails and boundaries)")
    int tokensPerBlock;

    @Option(names = "--churn-slab", paramLabel = "BYTES", converter = SizeConverter.class, defaultValue = "1m",
            description = "default ${DEFAULT-VALUE} (small slabs: compaction has work to do)")
    long slab;

    @Option(names = "--limit", paramLabel = "BYTES", converter = SizeConverter.class, defaultValue = "0",
            description = "store limit, default: a quarter of what all sequences could reach")
    long limit;

    @Option(names = "--sequences", paramLabel = "N", defaultValue = "8",
            description = "sequences per thread at most, default ${DEFAULT-VALUE}")
    int sequences;

    @Option(names = "--max-rows", paramLabel = "N", defaultValue = "512",
            description = "rows per head before a sequence must evict, default ${DEFAULT-VALUE}")
    int maxRows;

    @Option(names = "--checkpoint", paramLabel = "SECONDS", defaultValue = "1",
            description = "interval of the paused global accounting checks, default ${DEFAULT-VALUE}")
    double checkpoint;

    double duration(boolean full) {
        return duration != null ? duration : full ? 30 : 20;
    }
}
