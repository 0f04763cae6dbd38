package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.PrefixTier;
import io.kvslab.tier.TierStats;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The read-through path of a shared prefix (issue 16) at Llama-3-8B geometry (32 layers, 32 query and 8 KV heads,
 * head dim 128, f16, 32 tokens per block: 4 MiB of K and V per block): {@value #BLOCKS} blocks of a prompt published
 * by one store are fetched by another from an in-memory tier (a map that hands back the very arrays it holds, so
 * the heap counted is the fetch's own, not a client's). Run with {@code -prof gc}: {@code gc.alloc.rate.norm}
 * divided by {@value #BLOCKS} is the heap allocated per block.
 *
 * <ul>
 *   <li>{@code fetch}: {@link PrefixTier#fetch} only: get the values and verify every block (envelope, record
 *       header, CRC32C, finite values, positions); what it allocates per block is what verification copies.</li>
 *   <li>{@code fetchAndAttach}: fetch, then {@link PrefixTier#attach} into a new sequence (the rows are copied into
 *       the store's native blocks: the one copy the path needs) and close it.</li>
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class PrefixFetchBench {
    public static final int BLOCKS = 4;
    static final int TPB = 32;

    @Param({"F16"})
    public DType dtype;

    private KvStore writerStore;
    private PrefixCache writerCache;
    private PrefixTier writer;
    private KvStore readerStore;
    private PrefixCache readerCache;
    private PrefixTier reader;
    private int[] tokens;

    /** A tier in a map: values are returned as stored (no copy). */
    static final class MapTier implements BlockTier {
        private final ConcurrentHashMap<BlockKey, byte[]> values = new ConcurrentHashMap<>();

        @Override
        public String name() {
            return "map";
        }

        @Override
        public boolean put(BlockKey key, byte[] record) {
            values.put(key, record);
            return true;
        }

        @Override
        public Optional<byte[]> get(BlockKey key) {
            return Optional.ofNullable(values.get(key));
        }

        @Override
        public boolean remove(BlockKey key) {
            return values.remove(key) != null;
        }

        @Override
        public TierStats stats() {
            return new TierStats(0, 0, 0, 0, 0, 0, 0, 0, -1);
        }

        @Override
        public void close() {
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws InterruptedException {
        KvLayout layout = new KvLayout(32, 32, 8, 128, dtype, TPB);
        MapTier tier = new MapTier();
        writerStore = KvStore.open(layout);
        writerCache = PrefixCache.create(writerStore);
        writer = PrefixTier.create(writerStore, writerCache, tier, "bench-model", 64);
        readerStore = KvStore.open(layout);
        readerCache = PrefixCache.create(readerStore);
        reader = PrefixTier.create(readerStore, readerCache, tier, "bench-model", 64);
        SplittableRandom r = new SplittableRandom(16);
        tokens = new int[BLOCKS * TPB + 1];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt(128_000);
        }
        int width = layout.kvHeads() * layout.headDim();
        try (Sequence s = writerStore.newSequence()) {
            for (int l = 0; l < layout.layers(); l++) {
                for (int p = 0; p < BLOCKS * TPB; p++) {
                    float[] k = new float[width];
                    float[] v = new float[width];
                    for (int i = 0; i < width; i++) {
                        k[i] = (float) r.nextGaussian();
                        v[i] = (float) r.nextGaussian();
                    }
                    s.append(l, k, v, p);
                }
            }
            writer.publish(s, tokens);
            if (!writer.flush(60_000)) {
                throw new IllegalStateException("the blocks were not published");
            }
        }
        if (reader.fetch(tokens, 0).blocks() != BLOCKS) {
            throw new IllegalStateException("the reader did not fetch every block");
        }
    }

    @Benchmark
    public PrefixTier.Fetched fetch() {
        return reader.fetch(tokens, 0);
    }

    @Benchmark
    public int fetchAndAttach() {
        PrefixTier.Fetched f = reader.fetch(tokens, 0);
        PrefixMatch m = reader.attach(new PrefixMatch(readerStore.newSequence(), 0), f, tokens);
        try (Sequence s = m.sequence()) {
            return m.matchedTokens();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        reader.close();
        writer.close();
        readerCache.close();
        writerCache.close();
        readerStore.close();
        writerStore.close();
    }
}
