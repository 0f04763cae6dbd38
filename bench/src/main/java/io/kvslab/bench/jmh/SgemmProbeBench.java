package io.kvslab.bench.jmh;

import io.kvslab.internal.ffm.KernelDowncalls;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The baseline the prefill and policy suites divide by: one bare OpenBLAS {@code sgemm} of {@value #TOKENS} tokens
 * by a {@value #DIM} x {@value #DIM} weight matrix (a Llama-3-8B projection, the product that dominates a layer's
 * prefill FLOPs), OpenBLAS's own thread count. {@code 2 x TOKENS x DIM^2} FLOPs per call.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@State(Scope.Benchmark)
public class SgemmProbeBench {
    static final int TOKENS = 512;
    static final int DIM = 4096;
    /** FLOPs of one call. */
    static final double FLOPS = 2.0 * TOKENS * DIM * (double) DIM;

    private MemorySegment x;
    private MemorySegment w;
    private MemorySegment out;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(1);
        float[] wa = new float[DIM * DIM];
        float[] xa = new float[TOKENS * DIM];
        for (int i = 0; i < wa.length; i++) {
            wa[i] = (float) (r.nextDouble() - 0.5);
        }
        for (int i = 0; i < xa.length; i++) {
            xa[i] = (float) (r.nextDouble() - 0.5);
        }
        w = MemorySegment.ofArray(wa);
        x = MemorySegment.ofArray(xa);
        out = MemorySegment.ofArray(new float[TOKENS * DIM]);
    }

    @Benchmark
    public MemorySegment sgemm() {
        KernelDowncalls.blasMatmulNt(x, w, out, TOKENS, DIM, DIM);
        return out;
    }
}
