package io.kvslab.bench.serve;

import io.kvslab.KvSlabException;
import io.kvslab.bench.cli.Check;
import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelFormatException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.net.InetAddress;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code kvslab serve}: an OpenAI-compatible completions server with continuous batching on the KV store. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a Llama model over HTTP (OpenAI /v1/completions, /health, /metrics) with continuous "
                + "batching on the KV store.")
public final class ServeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, description = "llama2.c checkpoint (.bin) or GGUF file")
    Path model;

    @Option(names = "--tokenizer", description = "llama2.c tokenizer (required for .bin, optional for GGUF)")
    Path tokenizer;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to bind (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "port, 0 for any free one (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--max-batch", defaultValue = "32", description = "sequences per step at most (default: ${DEFAULT-VALUE})")
    int maxBatch;

    @Option(names = "--decode-threads", defaultValue = "2", paramLabel = "N",
            description = "threads of the batched decode attention call, 1-64 (default: ${DEFAULT-VALUE})")
    int decodeThreads;

    @Option(names = "--kv-limit", converter = ByteSize.class, description = "KV memory limit, e.g. 64m (default: none)")
    Long kvLimit;

    @Option(names = "--slab", converter = ByteSize.class,
            description = "KV slab size, e.g. 256k (default: room for four whole-context sequences, at most 16m)")
    Long slab;

    @Option(names = "--pressure", description = "when the next step does not fit --kv-limit, in this order: "
            + "compress:POLICY:BUDGET (streamingllm or knorm; a fraction like 0.5 or rows per head), swap (to a disk "
            + "tier in a temporary directory), recompute; e.g. compress:streamingllm:96,swap,recompute (default: none, the request that finds no room fails with 503)")
    String pressure;

    @Option(names = "--stream-interval", defaultValue = "1", paramLabel = "N",
            description = "hand a stream's tokens to its HTTP thread N at a time (the first at once), 1-1024: fewer "
                    + "wake-ups, writes and flushes per token for a later arrival (default: ${DEFAULT-VALUE})")
    int streamInterval;

    @Option(names = "--kv-dtype", paramLabel = "TYPE", converter = KvDtypesConverter.class, defaultValue = "f32",
            description = "how the store keeps K/V rows: f32, f16, bf16, q8_0, q4_0 for both, or K/V "
                    + "(e.g. q8_0/q4_0: K q8_0, V q4_0) (default: ${DEFAULT-VALUE})")
    KvDtypes kvDtype;

    @Option(names = "--prefix-cache", description = "reuse the KV blocks of identical prompt prefixes")
    boolean prefixCache;

    @Option(names = "--matmul", defaultValue = "java",
            description = "java (rows independent of the batch by construction; default) or openblas")
    String matMul;

    @Option(names = "--remote-tier", paramLabel = "URI",
            description = "share prompts' prefix KV blocks through Redis, e.g. redis://127.0.0.1:6379, or a Redis "
                    + "Cluster, redis-cluster://host:port[,host:port...] (turns the prefix cache on; see "
                    + "docs/distributed.md)")
    String remoteTier;

    @Option(names = "--disk-tier", paramLabel = "DIR", description = "keep prefix KV blocks in this directory too "
            + "(in front of --remote-tier, or alone)")
    Path diskTier;

    @Option(names = "--disk-cap", converter = ByteSize.class, paramLabel = "BYTES",
            description = "size cap of --disk-tier, e.g. 4g (default: 1g)")
    Long diskCap;

    @Option(names = "--tier-timeout", paramLabel = "MS", defaultValue = "250",
            description = "longest one Redis call may take, in milliseconds (default: ${DEFAULT-VALUE})")
    long tierTimeoutMillis;

    /** Runs the command alone (until the CLI registers it as a subcommand: {@code java -cp kvslab.jar io.kvslab.bench.serve.ServeCommand ...}). */
    public static void main(String[] args) {
        System.exit(new picocli.CommandLine(new ServeCommand()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        // a usage error as in generate (exit 2), and before anything opens them: opening a FIFO blocks for a writer
        Check.inputFile(spec, "--model", model);
        if (tokenizer != null) {
            Check.inputFile(spec, "--tokenizer", tokenizer);
        }
        java.io.PrintWriter err = spec.commandLine().getErr();
        MatMul mm;
        try {
            mm = MatMul.valueOf(matMul.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            err.println("kvslab serve: --matmul takes java or openblas, not '" + matMul + "'");
            return 2;
        }
        if (!InetAddress.getByName(host).isLoopbackAddress()) {
            System.err.println("kvslab serve: warning: binding " + host + ", which is not a loopback address; the "
                    + "server has no authentication");
        }
        ServeConfig config;
        TierOptions tiers;
        try {
            tiers = new TierOptions(remoteTier, diskTier, diskCap == null ? TierOptions.DEFAULT_DISK_CAP : diskCap,
                    java.time.Duration.ofMillis(tierTimeoutMillis), TierOptions.DEFAULT_QUEUE, null);
            if (remoteTier != null) {
                io.kvslab.tier.RedisTierConfig.of(remoteTier);   // reject a bad URI before loading
            }
            config = ServeConfig.defaults().withMaxBatch(maxBatch)
                    .withKvLimit(kvLimit == null ? Long.MAX_VALUE : kvLimit, slab == null ? 0 : slab).withMatMul(mm)
                    .withPressure(pressure).withPrefixCache(prefixCache)
                    .withDecodeThreads(decodeThreads).withKvDtypes(kvDtype.key(), kvDtype.value())
                    .withStreamInterval(streamInterval);
            if (pressure != null) {
                PressurePolicy.parse(pressure, seq -> false).close(); // reject a bad spec first
            }
        } catch (IllegalArgumentException | io.kvslab.KvArgumentException e) {
            err.println("kvslab serve: " + e.getMessage());
            return 2;
        }
        LoadedModel m;
        try {
            m = LoadedModel.load(model, tokenizer);
        } catch (ModelFormatException | IllegalArgumentException e) {
            // a file that is not what --model / --tokenizer needs: a usage error, as generate reports it
            err.println("kvslab serve: " + e.getMessage());
            return 2;
        } catch (KvSlabException e) {
            err.println("kvslab serve: " + e.getMessage());
            return 1;
        }
        int rows = Math.max(maxBatch, config.prefillChunk());
        String tooWide = m.model().config().rowsProblem(rows);
        if (tooWide != null) {
            err.println("kvslab serve: " + (rows == maxBatch ? "--max-batch " + maxBatch
                    : "the prefill chunk of " + rows + " tokens") + ": " + tooWide);
            return 2;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        try (CompletionServer server = CompletionServer.start(m, model.getFileName().toString(), config, tiers, host,
                port)) {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                stopped.countDown();
            }));
            System.err.printf(Locale.ROOT, "kvslab serve: %s on %s/v1 (max batch %d, kv %s, kv limit %s, matmul %s,"
                    + " pressure %s, prefix cache %s)%n", model.getFileName(), server.baseUrl(), maxBatch,
                    kvDtype.label(), kvLimit == null ? "none" : kvLimit + " bytes", mm.name().toLowerCase(Locale.ROOT),
                    pressure == null ? "none" : pressure, prefixCache || tiers.any() ? "on" : "off");
            if (tiers.any()) {
                System.err.printf(Locale.ROOT, "kvslab serve: prefix tier %s%s%n",
                        remoteTier == null ? "" : remoteTier + " (timeout " + tierTimeoutMillis + " ms)",
                        diskTier == null ? "" : (remoteTier == null ? "" : " behind ") + "disk " + diskTier);
            }
            stopped.await();
        }
        return 0;
    }
}
