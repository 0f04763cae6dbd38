package io.kvslab.bench.jmh;

import io.kvslab.bench.stress.StructuredKv;
import io.kvslab.bench.stress.SyntheticPolicyInputs;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.Attention;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;
import io.kvslab.policy.CompressionResult;
import io.kvslab.policy.LayerContext;
import io.kvslab.policy.ValueNorm;
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

import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What a compression policy costs next to the attention work it follows: one Llama-3-8B layer (32 query heads,
 * 8 KV heads, head dim 128, f16, 32 tokens per block) holding {@code context} synthetic tokens.
 *
 * <ul>
 *   <li>{@code compress}: CriticalAdaKV (window 32, max-pool 7, Ada-KV alpha 0.2, two stages alpha 0.5) keeping
 *       {@code kept} of the rows with the library's layer-at-a-time {@code Compressor}: read the layer (window attention,
 *       value-projection L1 norms with a synthetic 4096 x 4096 W_o, Ada-KV allocation, two-stage selection), and
 *       apply ({@code Sequence.keep(layer, rows)}) on a fresh fork of the filled sequence;</li>
 *   <li>{@code select}: the same without reading the context and without applying;</li>
 *   <li>{@code compressL2}, {@code selectL2}: the same with {@link ValueNorm#L2} value norms (from W_o's Gram
 *       matrices, computed on the first call and cached in the compressor's workspace);</li>
 *   <li>{@code prefill}: causal prefill attention of the same layer over all {@code context} tokens with the
 *       native kernel ({@link Attention#prefill}), the work the compression follows after a prompt.</li>
 * </ul>
 * Single-shot times (each call is long); the ratio compress / prefill is what {@code kvslab bench policy} reports.
 * At 32k tokens prefill is ~8.8 TFLOP: minutes per call on two cores, so the default also runs 4k and 8k.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Xmx8g"})
@State(Scope.Benchmark)
public class PolicyCostBench {
    static final KvLayout LAYOUT = SyntheticLayer.LAYOUT;

    @Param({"4096", "8192", "32768"})
    public int context;

    @Param({"0.25"})
    public double kept;

    private KvStore store;
    private Sequence filled;
    private Sequence fork;
    private CompressionPolicy policy;
    private CompressionPolicy policyL2;
    private Compressor compressor;
    private Attention attention;
    private SyntheticPolicyInputs inputs;
    private List<LayerContext> context0;
    private float[] q;
    private float[] out;

    @Setup(Level.Trial)
    public void setup() {
        StructuredKv gen = new StructuredKv(LAYOUT, 1, StructuredKv.Shape.realistic());
        store = KvStore.open(LAYOUT);
        filled = store.newSequence();
        SyntheticLayer.fill(filled, gen, context);
        policy = Policies.criticalAdaKv();
        policyL2 = Policies.criticalAdaKv(ValueNorm.L2);
        compressor = new Compressor();
        inputs = new SyntheticPolicyInputs(LAYOUT, gen, 0, 1);
        context0 = contextOf(filled);
        q = SyntheticLayer.queries(gen, context);
        out = new float[q.length];
        attention = Attention.create(Math.min(64, Runtime.getRuntime().availableProcessors()));
    }

    private List<LayerContext> contextOf(Sequence s) {
        return List.of(LayerContext.read(s, 0, inputs.layer(0, context, policy.windowQueries())));
    }

    @Setup(Level.Invocation)
    public void forkFilled() {
        fork = filled.fork();
    }

    @TearDown(Level.Invocation)
    public void closeFork() {
        fork.close();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        attention.close();
        compressor.close();
        filled.close();
        store.close();
    }

    @Benchmark
    public CompressionResult compress() {
        return compressor.compress(fork, policy, Budget.fraction(kept),
                l -> inputs.forPolicy(policy, l, context, policy.windowQueries()));
    }

    @Benchmark
    public Selection select() {
        return policy.select(context0, Budget.fraction(kept), compressor);
    }

    @Benchmark
    public CompressionResult compressL2() {
        return compressor.compress(fork, policyL2, Budget.fraction(kept),
                l -> inputs.forPolicy(policyL2, l, context, policyL2.windowQueries()));
    }

    @Benchmark
    public Selection selectL2() {
        return policyL2.select(context0, Budget.fraction(kept), compressor);
    }

    @Benchmark
    public float[] prefill() {
        attention.prefill(filled, 0, q, context, out);
        return out;
    }
}
