package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
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
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

/**
 * Ingest: {@code Sequence.appendChunk} of f32 K and V rows (one Llama-3-8B layer's geometry: 8 KV heads, head dim
 * 128, 32 tokens per block, chunks of {@value #CHUNK} tokens) into a store of {@code dtype}, against {@code copy}:
 * a plain {@code MemorySegment.copy} of the same f32 bytes from the same heap arrays into native memory, rotating
 * through a destination as large as the sequence grows to (16 MiB of f32), so both write to memory of the same
 * size. A sequence is closed and replaced once it holds {@value #ROWS_PER_SEQUENCE} rows: that is at most one
 * 16 MiB slab, which the allocator keeps as its spare when the sequence closes, so the next sequence reuses mapped
 * memory. This measures the conversion and copy path; the cost of mapping and zeroing fresh slabs (slab churn) is
 * the allocator's and is measured by {@code stress long}. Score: time per chunk; bytes = {@link #chunkBytes()}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class IngestBench {
    public static final int KV_HEADS = 8;
    public static final int HEAD_DIM = 128;
    public static final int CHUNK = 256;
    public static final int ROWS_PER_SEQUENCE = 2048;

    /** "copy" = the plain copy baseline, otherwise the store's element type. */
    @Param({"copy", "F16", "BF16", "F32"})
    public String target;

    private KvStore store;
    private Sequence sequence;
    private float[] k;
    private float[] v;
    private long[] positions;
    private long next;
    private Arena arena;
    private MemorySegment copyDst;
    private long copyAt;

    /** f32 bytes of K plus V in one chunk (what both paths read). */
    public static long chunkBytes() {
        return 2L * CHUNK * KV_HEADS * HEAD_DIM * Float.BYTES;
    }

    @Setup(Level.Trial)
    public void setUp() {
        SplittableRandom rnd = new SplittableRandom(7);
        k = new float[CHUNK * KV_HEADS * HEAD_DIM];
        v = new float[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) rnd.nextDouble(-4, 4);
            v[i] = (float) rnd.nextDouble(-4, 4);
        }
        positions = new long[CHUNK];
        if (target.equals("copy")) {
            arena = Arena.ofShared();
            copyDst = arena.allocate((long) ROWS_PER_SEQUENCE / CHUNK * chunkBytes(), 64);
        } else {
            store = KvStore.open(new KvLayout(1, KV_HEADS, KV_HEADS, HEAD_DIM, DType.valueOf(target), 32));
            sequence = store.newSequence();
        }
    }

    @Benchmark
    public void ingest() {
        if (copyDst != null) {
            long half = chunkBytes() / 2;
            MemorySegment.copy(k, 0, copyDst, JAVA_FLOAT, copyAt, k.length);
            MemorySegment.copy(v, 0, copyDst, JAVA_FLOAT, copyAt + half, v.length);
            copyAt += chunkBytes();
            if (copyAt >= copyDst.byteSize()) {
                copyAt = 0;
            }
            return;
        }
        if (next >= ROWS_PER_SEQUENCE) {
            sequence.close();
            sequence = store.newSequence();
            next = 0;
        }
        for (int i = 0; i < CHUNK; i++) {
            positions[i] = next + i;
        }
        sequence.appendChunk(0, k, v, positions);
        next += CHUNK;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (arena != null) {
            arena.close();
        }
        if (sequence != null) {
            sequence.close();
            store.close();
        }
    }
}
