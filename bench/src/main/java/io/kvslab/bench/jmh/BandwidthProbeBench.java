package io.kvslab.bench.jmh;

import io.kvslab.internal.table.TableAttention;
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
import java.util.concurrent.TimeUnit;

/**
 * The machine's read bandwidth as the kernels' own thread pool sees it: one vectorised pass over a buffer far
 * larger than the caches ({@link #mib} MiB), split over {@link #threads} threads. The yardstick for
 * {@link DecodeAttentionBench}: kernel GB/s divided by probe GB/s is the fraction of the memory system's read
 * bandwidth the kernel achieves.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
public class BandwidthProbeBench {
    @Param({"1", "2"})
    public int threads;

    @Param({"1024"})
    public int mib;

    private Arena arena;
    private MemorySegment buffer;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        buffer = arena.allocate((long) mib << 20, 4096);
        buffer.fill((byte) 1); // touch every page, so the probe reads memory rather than the zero page
    }

    @Benchmark
    public double probe() {
        return TableAttention.readBandwidthProbe(buffer, threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }
}
