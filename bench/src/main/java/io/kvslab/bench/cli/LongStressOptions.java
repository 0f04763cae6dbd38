package io.kvslab.bench.cli;

import io.kvslab.bench.geometry.ModelGeometry;
import picocli.CommandLine.Option;

/** Options of {@code kvslab stress long}. Unset values take the quick defaults, or the big ones with --full. */
final class LongStressOptions {
    @Option(names = "--model", paramLabel = "NAME|L:H:KV:D", defaultValue = "llama-3.1-8b",
            description = "geometry (default ${DEFAULT-VALUE}; presets: llama-3.1-8b, llama-3.1-70b, mistral-7b, "
                    + "qwen2.5-7b, stories260k, or layers:heads:kvHeads:headDim)")
    String model;

    @Option(names = "--layers", paramLabel = "N",
            description = "use only the first N layers (default 4; all with --full)")
    Integer layers;

    @Option(names = "--tokens", paramLabel = "N", converter = SizeConverter.class,
            description = "tokens to stream (default 64k; 1m with --full)")
    Long tokens;

    @Option(names = "--budget", paramLabel = "N", defaultValue = "16384",
            description = "rows per (layer, KV head) kept by each compression (default ${DEFAULT-VALUE})")
    int budget;

    @Option(names = "--interval", paramLabel = "N", defaultValue = "8192",
            description = "rows accumulated beyond the budget before compressing (default ${DEFAULT-VALUE})")
    int interval;

    @Option(names = "--policy", paramLabel = "NAME", defaultValue = "streamingllm",
            description = "compression: streamingllm (default), knorm, snapkv, adakv, pyramidkv, criticalkv, "
                    + "criticaladakv (io.kvslab.policy, applied layer by layer); not dbudgetkv (no bound)")
    String policy;

    @Option(names = "--sinks", paramLabel = "N", defaultValue = "4",
            description = "sink rows always kept (streamingllm), default ${DEFAULT-VALUE}")
    int sinks;

    @Option(names = "--chunk", paramLabel = "N", defaultValue = "1",
            description = "tokens appended per call (1 = decode token by token), default ${DEFAULT-VALUE}")
    int chunk;

    @Option(names = "--attention-every", paramLabel = "N", defaultValue = "4096",
            description = "decode attention over all layers every N tokens (0 = never), default ${DEFAULT-VALUE}")
    int attentionEvery;

    @Option(names = "--check-every", paramLabel = "N", defaultValue = "8",
            description = "compare with the Java reference every N attention steps, default ${DEFAULT-VALUE}")
    int checkEvery;

    @Option(names = "--kernel-threads", paramLabel = "N",
            description = "threads per attention call (default: available processors)")
    Integer kernelThreads;

    @Option(names = "--tokens-per-block", paramLabel = "N", defaultValue = "32", description = "default 32")
    int tokensPerBlock;

    @Option(names = "--slab", paramLabel = "BYTES", converter = SizeConverter.class, defaultValue = "16m",
            description = "default ${DEFAULT-VALUE}")
    long slab;

    ModelGeometry geometry(boolean full) {
        ModelGeometry g = ModelGeometry.parse(model);
        int n = layers != null ? layers : full ? g.layers() : Math.min(4, g.layers());
        if (n < 1 || n > g.layers()) {
            throw new UsageException("--layers must be in [1, " + g.layers() + "] for " + g.name() + ", got " + n);
        }
        return g.withLayers(n);
    }

    long tokens(boolean full) {
        return tokens != null ? tokens : full ? 1_000_000 : 65_536;
    }
}
