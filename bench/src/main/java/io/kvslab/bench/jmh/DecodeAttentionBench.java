package io.kvslab.bench.jmh;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.table.SequenceTables;
import io.kvslab.internal.table.TableAccess;
import io.kvslab.internal.table.TableAttention;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Decode attention of one Llama-3-8B layer (32 query heads, 8 KV heads, head dim 128, 32 tokens per block) over
 * a KV cache built through the store (KvStore / Sequence), so the kernel reads real slab blocks. The score is
 * time per decode step; {@link #kvBytes} turns it into GB/s of K+V read, which {@code kvslab bench attention}
 * compares with {@link BandwidthProbeBench} measured in the same run. The call is the public
 * {@link Attention#decode}: it includes building the block-address arrays from the tables under the sequence's
 * read lock (no public path hands out addresses any more; they are cached while the tables and the slab
 * placement are unchanged), a few microseconds next to the kernel's milliseconds. {@link #decodeKernelOnly} is the
 * kernel alone (address arrays built once, {@value #KERNEL_STEPS} kernel calls under one lock hold, no per-call
 * check or copy), the old build's row: the difference of the two is the public entry point's per-call cost.
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
    /** Kernel calls per invocation of {@link #decodeKernelOnly}. */
    public static final int KERNEL_STEPS = 4;

    @Param({"4096", "32768", "131072"})
    public int context;

    /** Stored row types: f16 is the baseline the quantised ones (ggml q8_0, q4_0: 136 and 72 bytes per row) beat. */
    @Param({"F32", "F16", "Q8_0", "Q4_0"})
    public String dtype;

    @Param({"1", "2"})
    public int threads;

    /** Rows per block: larger blocks stream closer to the read bandwidth (fewer, longer runs of memory). */
    @Param({"32"})
    public int tokensPerBlock;

    /**
     * Tokens per append while filling: 1024 (one prefill chunk after another) or 1 (token by token, as generation
     * appends). The slabs place them differently: a 1024-token chunk gives each KV head runs of consecutive blocks,
     * while token-by-token appends allocate every (KV head) block at the same moment, so one head's consecutive
     * blocks lie ~16 blocks apart (docs/benchmarks.md, `tpb` section).
     */
    @Param({"1024"})
    public int appendTokens;

    private KvStore store;
    private Sequence sequence;
    private Attention attention;
    private TableAttention kernel;
    private SequenceTables tables;
    private float[] q;
    private float[] out;

    /** Bytes of K and V one decode step reads for this context and dtype. */
    public static long kvBytes(int context, DType dtype) {
        return 2L * context * KV_HEADS * dtype.rowBytes(HEAD_DIM);
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
        if (appendTokens < 1 || appendTokens > chunk) {
            throw new IllegalArgumentException("appendTokens must be in [1, " + chunk + "], got " + appendTokens);
        }
        int rowFloats = KV_HEADS * HEAD_DIM;
        for (int done = 0; done < context; ) {
            int from = done % chunk;   // rows of the random chunk, over and over
            int n = Math.min(Math.min(appendTokens, context - done), chunk - from);
            float[] kn = n == chunk ? k : Arrays.copyOfRange(k, from * rowFloats, (from + n) * rowFloats);
            float[] vn = n == chunk ? v : Arrays.copyOfRange(v, from * rowFloats, (from + n) * rowFloats);
            if (n == 1) {
                sequence.append(0, kn, vn, done);
            } else {
                long[] positions = new long[n];
                for (int i = 0; i < n; i++) {
                    positions[i] = done + i;
                }
                sequence.appendChunk(0, kn, vn, positions);
            }
            done += n;
        }
        attention = Attention.create(threads);
        q = new float[QUERY_HEADS * HEAD_DIM];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) rnd.nextDouble(-1, 1);
        }
        out = new float[q.length];
        kernel = new TableAttention(threads, "DecodeAttentionBench");
        tables = TableAccess.of(sequence);
    }

    /** One decode step through the public entry point. */
    @Benchmark
    public void decode() {
        attention.decode(sequence, 0, q, out);
    }

    /** The kernel alone, per step. */
    @Benchmark
    @OperationsPerInvocation(KERNEL_STEPS)
    public void decodeKernelOnly() {
        kernel.decodeKernelOnly(tables, 0, q, out, KERNEL_STEPS);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        attention.close();
        kernel.close();
        sequence.close();
        store.close();
    }
}
