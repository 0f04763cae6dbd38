package io.kvslab.bench.jmh;

import io.kvslab.Attention;
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
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Decode attention of a batch of {@link #batch} sequences of {@link #context} tokens each over one Llama-3-8B layer
 * (32 query heads, 8 KV heads, head dim 128, 32 tokens per block), every sequence with its own blocks: one
 * {@link Attention#decodeBatch} call ({@link #batched}) against {@link Attention#decode} called for each sequence in
 * a loop ({@link #loop}), same thread count, same native query/output tensors. {@link #kvBytes} turns the time per
 * step into GB/s of K+V read, which {@link BatchDecodeBenchRunner} relates to {@link BandwidthProbeBench} measured
 * in the same run.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class BatchDecodeBench {
    public static final int QUERY_HEADS = 32;
    public static final int KV_HEADS = 8;
    public static final int HEAD_DIM = 128;
    public static final int TOKENS_PER_BLOCK = 32;

    @Param({"1", "8", "32"})
    public int batch;

    @Param({"2048", "8192"})
    public int context;

    /** f16: 32 sequences of 8k tokens are 1 GiB of K+V (f32 would be 2 GiB on a shared machine). */
    @Param({"F16"})
    public String dtype;

    @Param({"2"})
    public int threads;

    private KvStore store;
    private List<Sequence> sequences;
    private Attention attention;
    private Arena arena;
    private MemorySegment q;
    private MemorySegment out;
    private MemorySegment[] qRows;
    private MemorySegment[] outRows;

    /** Bytes of K and V one decode step of the whole batch reads. */
    public static long kvBytes(int batch, int context, DType dtype) {
        return 2L * batch * context * KV_HEADS * HEAD_DIM * dtype.bytes();
    }

    @Setup(Level.Trial)
    public void setUp() {
        KvLayout layout = new KvLayout(1, QUERY_HEADS, KV_HEADS, HEAD_DIM, DType.valueOf(dtype), TOKENS_PER_BLOCK);
        store = KvStore.open(layout);
        sequences = new ArrayList<>();
        int chunk = Math.min(1024, context);
        SplittableRandom rnd = new SplittableRandom(42);
        float[] k = new float[chunk * KV_HEADS * HEAD_DIM];
        float[] v = new float[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) rnd.nextDouble(-1, 1);
            v[i] = (float) rnd.nextDouble(-1, 1);
        }
        // sequences grown round-robin, so each one's blocks are spread over the slabs as in a server
        for (int s = 0; s < batch; s++) {
            sequences.add(store.newSequence());
        }
        for (int done = 0; done < context; done += chunk) {
            int n = Math.min(chunk, context - done);
            long[] positions = new long[n];
            for (int i = 0; i < n; i++) {
                positions[i] = done + i;
            }
            int floats = n * KV_HEADS * HEAD_DIM;
            for (Sequence s : sequences) {
                s.appendChunk(0, n == chunk ? k : Arrays.copyOf(k, floats), n == chunk ? v : Arrays.copyOf(v, floats),
                        positions);
            }
        }
        attention = Attention.create(threads);
        arena = Arena.ofShared();
        int width = QUERY_HEADS * HEAD_DIM;
        q = arena.allocate((long) batch * width * Float.BYTES, 64);
        out = arena.allocate(q.byteSize(), 64);
        for (long i = 0; i < (long) batch * width; i++) {
            q.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        }
        qRows = new MemorySegment[batch];
        outRows = new MemorySegment[batch];
        for (int s = 0; s < batch; s++) {
            qRows[s] = q.asSlice((long) s * width * Float.BYTES, (long) width * Float.BYTES);
            outRows[s] = out.asSlice((long) s * width * Float.BYTES, (long) width * Float.BYTES);
        }
    }

    /** All sequences in one native call. */
    @Benchmark
    public void batched() {
        attention.decodeBatch(0, sequences, q, out);
    }

    /** The baseline: one single-sequence call per sequence. */
    @Benchmark
    public void loop() {
        for (int s = 0; s < batch; s++) {
            attention.decode(sequences.get(s), 0, qRows[s], outRows[s]);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        attention.close();
        sequences.forEach(Sequence::close);
        store.close();
        arena.close();
    }
}
