package io.kvslab.bench.jmh;

import io.kvslab.Attention;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.bench.stress.StructuredKv;
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
 * Causal prefill attention of one Llama-3-8B layer (32 query heads, 8 KV heads, head dim 128, f16, 32 tokens per
 * block) over {@code context} tokens with the native kernel ({@link Attention#prefill}, one thread per core): every
 * query attends to the keys at or before its position. FLOPs = {@code 2 x 2 x queryHeads x headDim x n(n+1)/2}
 * (scores and the weighted sum of values). Single-shot: a call is seconds at 4k and minutes at 32k on two cores.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Xmx8g"})
@State(Scope.Benchmark)
public class PrefillBench {
    static final KvLayout LAYOUT = SyntheticLayer.LAYOUT;

    @Param({"4096", "32768"})
    public int context;

    private KvStore store;
    private Sequence filled;
    private Attention attention;
    private float[] q;
    private float[] out;

    /** FLOPs of one causal prefill over {@code n} tokens of this layout. */
    static double flops(int n) {
        return 4.0 * LAYOUT.queryHeads() * LAYOUT.headDim() * ((double) n * (n + 1) / 2);
    }

    @Setup(Level.Trial)
    public void setup() {
        StructuredKv gen = new StructuredKv(LAYOUT, 1, StructuredKv.Shape.realistic());
        store = KvStore.open(LAYOUT);
        filled = store.newSequence();
        SyntheticLayer.fill(filled, gen, context);
        q = SyntheticLayer.queries(gen, context);
        out = new float[q.length];
        attention = Attention.create(Math.min(64, Runtime.getRuntime().availableProcessors()));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        attention.close();
        filled.close();
        store.close();
    }

    @Benchmark
    public float[] prefill() {
        attention.prefill(filled, 0, q, context, out);
        return out;
    }
}
