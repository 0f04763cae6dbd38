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

import java.util.concurrent.TimeUnit;

/**
 * Decode-time append: {@code Sequence.append} of one token (K and V of all 8 KV heads of one Llama-3-8B layer, head
 * dim 128, 32 tokens per block) into a store of {@code dtype}. Run with {@code -prof gc}: {@code gc.alloc.rate.norm}
 * is the heap allocated per appended token. A new block pair per KV head every 32 tokens allocates the new block
 * list (amortised over the block's 32 tokens), and the sequence is closed and replaced every
 * {@value #ROWS_PER_SEQUENCE} tokens (its tables grow again: amortised over those tokens); an append inside a block
 * allocates nothing.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class AppendBench {
    public static final int KV_HEADS = 8;
    public static final int HEAD_DIM = 128;
    public static final int ROWS_PER_SEQUENCE = 16_384;

    @Param({"F16"})
    public DType dtype;

    private KvStore store;
    private Sequence sequence;
    private float[] k;
    private float[] v;
    private long next;

    @Setup(Level.Trial)
    public void setUp() {
        k = new float[KV_HEADS * HEAD_DIM];
        v = new float[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = (i % 97) * 0.01f;
            v[i] = -(i % 89) * 0.01f;
        }
        store = KvStore.open(new KvLayout(1, KV_HEADS, KV_HEADS, HEAD_DIM, dtype, 32));
        sequence = store.newSequence();
    }

    @Benchmark
    public void append() {
        if (next == ROWS_PER_SEQUENCE) {
            sequence.close();
            sequence = store.newSequence();
            next = 0;
        }
        sequence.append(0, k, v, next++);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        sequence.close();
        store.close();
    }
}
