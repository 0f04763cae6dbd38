package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.table.AttentionShape;
import io.kvslab.internal.table.NativeAttention;
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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Decode attention of one Llama-3-8B layer (32 query heads, 8 KV heads, head dim 128, 32 tokens per block) over
 * a KV cache built through the store (KvStore / Sequence), so the kernel reads real slab blocks. The score is
 * time per decode step; {@link #kvBytes} turns it into GB/s of K+V read, which {@code kvslab bench attention}
 * compares with {@link BandwidthProbeBench} measured in the same run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class DecodeAttentionBench {
    public static final int QUERY_HEADS = 32;
    public static final int KV_HEADS = 8;
    public static final int HEAD_DIM = 128;

    @Param({"4096", "32768", "131072"})
    public int context;

    @Param({"F32", "F16"})
    public String dtype;

    @Param({"1", "2"})
    public int threads;

    /** Rows per block: larger blocks stream closer to the read bandwidth (fewer, longer runs of memory). */
    @Param({"32"})
    public int tokensPerBlock;

    private KvStore store;
    private Sequence sequence;
    private KvStore.ReadAccess access;
    private Arena arena;
    private AttentionShape shape;
    private MemorySegment q;
    private MemorySegment out;
    private MemorySegment keyBlocks;
    private MemorySegment valueBlocks;
    private MemorySegment offsets;
    private MemorySegment lengths;
    private float scale;

    /** Bytes of K and V one decode step reads for this context and dtype. */
    public static long kvBytes(int context, DType dtype) {
        return 2L * context * KV_HEADS * HEAD_DIM * dtype.bytes();
    }

    @Setup(Level.Trial)
    public void setUp() {
        KvLayout layout = new KvLayout(1, QUERY_HEADS, KV_HEADS, HEAD_DIM, DType.valueOf(dtype), tokensPerBlock);
        store = KvStore.open(layout);
        sequence = store.newSequence();
        // one random chunk appended over and over: the contents do not change the work, and generating 2 x 1 GiB
        // of random floats would dominate the setup
        int chunk = 1024;
        SplittableRandom rnd = new SplittableRandom(42);
        float[] k = new float[chunk * KV_HEADS * HEAD_DIM];
        float[] v = new float[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) rnd.nextDouble(-1, 1);
            v[i] = (float) rnd.nextDouble(-1, 1);
        }
        for (int done = 0; done < context; done += chunk) {
            int n = Math.min(chunk, context - done);
            long[] positions = new long[n];
            for (int i = 0; i < n; i++) {
                positions[i] = done + i;
            }
            int floats = n * KV_HEADS * HEAD_DIM;
            sequence.appendChunk(0, n == chunk ? k : Arrays.copyOf(k, floats), n == chunk ? v : Arrays.copyOf(v, floats),
                    positions);
        }
        shape = AttentionShape.of(layout);
        arena = Arena.ofShared();
        long blocks = 0;
        for (int h = 0; h < KV_HEADS; h++) {
            blocks += sequence.blockCount(0, h);
        }
        keyBlocks = arena.allocate(JAVA_LONG, blocks);
        valueBlocks = arena.allocate(JAVA_LONG, blocks);
        offsets = arena.allocate(JAVA_LONG, KV_HEADS + 1);
        lengths = arena.allocate(JAVA_LONG, KV_HEADS);
        // the addresses stay valid while we hold a read access (no compaction can move the blocks)
        access = store.readAccess();
        long at = 0;
        for (int h = 0; h < KV_HEADS; h++) {
            offsets.setAtIndex(JAVA_LONG, h, at);
            lengths.setAtIndex(JAVA_LONG, h, sequence.length(0, h));
            int n = sequence.blockCount(0, h);
            for (int b = 0; b < n; b++) {
                keyBlocks.setAtIndex(JAVA_LONG, at + b, sequence.keyBlockAddress(0, h, b));
                valueBlocks.setAtIndex(JAVA_LONG, at + b, sequence.valueBlockAddress(0, h, b));
            }
            at += n;
        }
        offsets.setAtIndex(JAVA_LONG, KV_HEADS, at);
        q = arena.allocate(JAVA_FLOAT, (long) QUERY_HEADS * HEAD_DIM);
        for (long i = 0; i < QUERY_HEADS * HEAD_DIM; i++) {
            q.setAtIndex(JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        }
        out = arena.allocate(JAVA_FLOAT, (long) QUERY_HEADS * HEAD_DIM);
        scale = (float) (1 / Math.sqrt(HEAD_DIM));
    }

    @Benchmark
    public void decode() {
        NativeAttention.decode(shape, q, keyBlocks, valueBlocks, offsets, lengths, scale, out, null, threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        access.close();
        sequence.close();
        store.close();
        arena.close();
    }
}
