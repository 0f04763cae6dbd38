package io.kvslab.bench.tier;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.bench.model.PrefillProbe;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.PrefixTier;
import io.kvslab.tier.RedisTier;
import io.kvslab.tier.RedisTierConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code kvslab bench redis}: prefix blocks of Llama-3-8B geometry (synthetic K/V) through a Redis server: publish
 * and fetch throughput, one block's round trip, Redis memory per cached token, the measured prefill GFLOP/s, and
 * from them the prefix length past which fetching beats recomputing. Rounds interleave fetch and prefill probes.
 */
@Command(name = "redis", mixinStandardHelpOptions = true,
        description = "Prefix-block fetch vs recompute at Llama-3-8B geometry through a Redis server (synthetic K/V); "
                + "the defaults take about 1.5 min.")
public final class RedisBenchCommand implements Callable<Integer> {
    /** Llama-3-8B: 32 layers, 32 query heads, 8 KV heads, head dim 128, hidden 14336. */
    static final int LAYERS = 32;
    static final int HEADS = 32;
    static final int KV_HEADS = 8;
    static final int HEAD_DIM = 128;
    static final int DIM = 4096;
    static final int HIDDEN = 14336;
    /** Matrix-product FLOPs per prefilled token, embedding lookup and LM head excluded: 2 x transformer weights. */
    static final double FLOPS_PER_TOKEN = 2.0 * LAYERS
            * (2.0 * DIM * DIM + 2.0 * DIM * KV_HEADS * HEAD_DIM + 3.0 * DIM * HIDDEN);
    /** Attention FLOPs of the token at position p: QK^T and PV over p keys, every query head of every layer. */
    static final double ATTENTION_FLOPS_PER_POSITION = 4.0 * LAYERS * HEADS * HEAD_DIM;

    @Option(names = "--redis", defaultValue = "redis://127.0.0.1:6379",
            description = "the Redis server (default: ${DEFAULT-VALUE}); keys go under a fresh prefix, removed after")
    String uri;

    @Option(names = "--blocks", defaultValue = "32", description = "prefix blocks per round (default: ${DEFAULT-VALUE})")
    int blocks;

    @Option(names = "--tokens-per-block", defaultValue = "32", description = "default: ${DEFAULT-VALUE}")
    int tokensPerBlock;

    @Option(names = "--rounds", defaultValue = "3", description = "interleaved rounds (default: ${DEFAULT-VALUE})")
    int rounds;

    @Option(names = "--json", description = "print JSON instead of the table")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (blocks < 1 || blocks > 4096 || tokensPerBlock < 1 || tokensPerBlock > 256 || rounds < 1) {
            System.err.println("kvslab bench redis: --blocks in [1, 4096], --tokens-per-block in [1, 256], --rounds >= 1");
            return 2;
        }
        KvLayout layout = new KvLayout(LAYERS, HEADS, KV_HEADS, HEAD_DIM, DType.F16, tokensPerBlock);
        long bytesPerToken = 2L * LAYERS * KV_HEADS * HEAD_DIM * DType.F16.bytes();
        int tokens = blocks * tokensPerBlock;
        String prefix = "kvslab-bench-" + Long.toHexString(System.nanoTime()) + ":";
        RedisTierConfig config = RedisTierConfig.of(uri).withTimeout(Duration.ofSeconds(30)).withKeyPrefix(prefix);
        try (RedisTier tier = RedisTier.connect(config)) {
            if (!tier.connected()) {
                System.err.println("kvslab bench redis: cannot reach " + uri + " (start one: redis-server --port 6379 "
                        + "--save '')");
                return 1;
            }
            PrefillProbe probe = new PrefillProbe(DIM, 128);
            int[] prompt = new int[tokens];
            SplittableRandom r = new SplittableRandom(42);
            for (int i = 0; i < tokens; i++) {
                prompt[i] = r.nextInt(128_000);
            }
            List<Double> publishSec = new ArrayList<>();
            List<Double> rawSec = new ArrayList<>();
            List<Double> fetchSec = new ArrayList<>();
            List<Double> roundTripSec = new ArrayList<>();
            List<Double> gflops = new ArrayList<>();
            long valueBytes = 0;
            long memoryPerToken = -1;
            for (int round = 0; round < rounds; round++) {
                int[] p = prompt.clone();
                p[0] = round;   // a new prefix each round: new keys
                long before = tier.serverUsedMemory().orElse(-1);
                try (Replica a = Replica.open(layout, tier, blocks)) {
                    try (Sequence s = a.store.newSequence()) {
                        fill(s, layout, tokens, round);
                        long t0 = System.nanoTime();
                        a.prefix.publish(s, p);
                        if (!a.prefix.flush(600_000) || a.prefix.stats().publishedBlocks() != blocks) {
                            System.err.println("kvslab bench redis: publishing failed: " + a.prefix.stats());
                            return 1;
                        }
                        publishSec.add((System.nanoTime() - t0) / 1e9);
                        valueBytes = a.prefix.stats().bytesPublished() / blocks;
                    }
                    long after = tier.serverUsedMemory().orElse(-1);
                    if (before >= 0 && after >= 0) {
                        memoryPerToken = (after - before) / tokens;
                    }
                    gflops.add(probe.gflops(4));   // A B A B: prefill probe between the tier phases
                    List<BlockKey> keys = a.prefix.blockKeys(p);
                    long t1 = System.nanoTime();
                    long got = tier.getAll(keys).stream().filter(o -> o.isPresent()).count();
                    rawSec.add((System.nanoTime() - t1) / 1e9);
                    if (got != blocks) {
                        System.err.println("kvslab bench redis: " + got + " of " + blocks + " blocks came back (maxmemory?)");
                        return 1;
                    }
                    double[] rt = new double[9];
                    for (int i = 0; i < rt.length; i++) {
                        long t = System.nanoTime();
                        tier.get(keys.get(i % keys.size()));
                        rt[i] = (System.nanoTime() - t) / 1e9;
                    }
                    Arrays.sort(rt);
                    roundTripSec.add(rt[rt.length / 2]);
                    gflops.add(probe.gflops(4));
                    try (Replica b = Replica.open(layout, tier, 1)) {
                        long t2 = System.nanoTime();
                        PrefixMatch m = b.prefix.lookup(p);
                        fetchSec.add((System.nanoTime() - t2) / 1e9);
                        m.sequence().close();
                        if (m.matchedTokens() != tokens) {
                            System.err.println("kvslab bench redis: the second store matched " + m.matchedTokens()
                                    + " of " + tokens + " tokens: " + b.prefix.stats());
                            return 1;
                        }
                    }
                    for (BlockKey k : keys) {
                        tier.remove(k);
                    }
                }
            }
            report(layout, bytesPerToken, tokens, valueBytes, memoryPerToken, publishSec, rawSec, fetchSec,
                    roundTripSec, gflops);
        }
        return 0;
    }

    /** Synthetic K/V for {@code tokens} positions in every layer (f16-representable values). */
    private static void fill(Sequence s, KvLayout layout, int tokens, long seed) {
        int row = layout.kvHeads() * layout.headDim();
        int chunk = Math.min(tokens, 64);
        float[] k = new float[chunk * row];
        float[] v = new float[chunk * row];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) (r.nextDouble() * 2 - 1);
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        for (int l = 0; l < layout.layers(); l++) {
            for (int from = 0; from < tokens; from += chunk) {
                int n = Math.min(chunk, tokens - from);
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = from + i;
                }
                s.appendChunk(l, n == chunk ? k : Arrays.copyOf(k, n * row), n == chunk ? v : Arrays.copyOf(v, n * row),
                        pos);
            }
        }
    }

    private record Replica(KvStore store, PrefixCache cache, PrefixTier prefix) implements AutoCloseable {
        static Replica open(KvLayout layout, RedisTier tier, int queue) {
            KvStore store = KvStore.open(layout, new StoreConfig(Long.MAX_VALUE, 64L << 20));
            PrefixCache cache = PrefixCache.create(store);
            return new Replica(store, cache, PrefixTier.create(store, cache, tier, "bench-llama3-8b-synthetic",
                    Math.max(1, queue)));
        }

        @Override
        public void close() {
            prefix.close();
            cache.close();
            store.close();
        }
    }

    private static double median(List<Double> xs) {
        double[] a = xs.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }

    private void report(KvLayout layout, long bytesPerToken, int tokens, long valueBytes, long memoryPerToken,
                        List<Double> publishSec, List<Double> rawSec, List<Double> fetchSec, List<Double> roundTripSec,
                        List<Double> gflops) throws Exception {
        double publish = median(publishSec);
        double raw = median(rawSec);
        double fetch = median(fetchSec);
        double rtt = median(roundTripSec);
        double g = median(gflops);
        long bytes = valueBytes * blocks;
        double fetchPerToken = (fetch - rtt) / tokens;   // the slope; the round trip is the fixed part
        double recomputePerToken = FLOPS_PER_TOKEN / (g * 1e9);
        // recompute(n) = n * c + a * n^2 / 2 ; fetch(n) = rtt + n * f  =>  fetching wins past the n where they meet
        double breakEven = breakEven(rtt, fetchPerToken, recomputePerToken, ATTENTION_FLOPS_PER_POSITION / (g * 1e9));
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("geometry", "Llama-3-8B f16, " + layout.tokensPerBlock() + " tokens/block");
            o.put("bytesPerToken", bytesPerToken);
            o.put("blocks", blocks);
            o.put("tokens", tokens);
            o.put("valueBytesPerBlock", valueBytes);
            o.put("publishBlocksPerSec", blocks / publish);
            o.put("publishGBps", bytes / publish / 1e9);
            o.put("rawFetchBlocksPerSec", blocks / raw);
            o.put("rawFetchGBps", bytes / raw / 1e9);
            o.put("fetchVerifyAppendBlocksPerSec", blocks / fetch);
            o.put("fetchVerifyAppendGBps", bytes / fetch / 1e9);
            o.put("oneBlockRoundTripMs", rtt * 1e3);
            o.put("redisBytesPerCachedToken", memoryPerToken);
            o.put("prefillGflops", g);
            o.put("recomputeMicrosPerToken", recomputePerToken * 1e6);
            o.put("fetchMicrosPerToken", fetchPerToken * 1e6);
            o.put("breakEvenTokens", breakEven);
            o.put("rounds", rounds);
            System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
            return;
        }
        System.out.printf(Locale.ROOT, "geometry: Llama-3-8B f16, %d tokens/block: %d bytes/token, %d-byte values, "
                + "%d blocks (%d tokens) per round, %d rounds (medians)%n", layout.tokensPerBlock(), bytesPerToken,
                valueBytes, blocks, tokens, rounds);
        System.out.printf(Locale.ROOT, "publish (copy, encode, SET; write-behind thread): %8.1f blocks/s %7.3f GB/s%n",
                blocks / publish, bytes / publish / 1e9);
        System.out.printf(Locale.ROOT, "fetch, raw pipelined GETs:                        %8.1f blocks/s %7.3f GB/s%n",
                blocks / raw, bytes / raw / 1e9);
        System.out.printf(Locale.ROOT, "fetch + verify + append into a new store:         %8.1f blocks/s %7.3f GB/s "
                + "(%.1f us/token)%n", blocks / fetch, bytes / fetch / 1e9, fetchPerToken * 1e6);
        System.out.printf(Locale.ROOT, "one block round trip (GET):                       %8.3f ms%n", rtt * 1e3);
        System.out.printf(Locale.ROOT, "Redis memory per cached token:                    %8d bytes%s%n", memoryPerToken,
                memoryPerToken < 0 ? " (INFO memory unavailable)" : "");
        System.out.printf(Locale.ROOT, "prefill matmul rate (sgemm 128 x 4096 x 4096):    %8.1f GFLOP/s -> %.1f us/token "
                + "(%.2f GFLOP/token)%n", g, recomputePerToken * 1e6, FLOPS_PER_TOKEN / 1e9);
        System.out.printf(Locale.ROOT, "fetching beats recomputing past:                  %8.3f tokens%n", breakEven);
        System.out.printf(Locale.ROOT, "bytes moved: %d published, %d fetched per round%n", bytes, 2 * bytes);
    }

    /** Smallest n >= 0 with rtt + n f <= n c + a n^2 / 2 (infinite if never). */
    static double breakEven(double rtt, double f, double c, double a) {
        double qa = a / 2;
        double qb = c - f;
        double qc = -rtt;
        if (qa <= 0) {
            return qb <= 0 ? Double.POSITIVE_INFINITY : rtt / qb;
        }
        return (-qb + Math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa);
    }
}
