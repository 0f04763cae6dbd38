package io.kvslab.bench.jmh;

import io.kvslab.memory.CompactionResult;
import io.kvslab.memory.SlabAllocator;
import org.openjdk.jmh.annotations.AuxCounters;
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

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Compaction throughput: before each call, {@code slabs} full slabs of blocks are fragmented by freeing a random
 * {@code freeFraction} of the blocks (seeded, so every invocation sees the same pattern); the benchmark is one
 * {@code compact()}, which moves the blocks of the sparsest slabs into the fullest and returns emptied slabs.
 * The {@code bytesMoved} counter is reported per second: the compaction's copy bandwidth. The primary score is
 * compactions per second.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@State(Scope.Thread)
public class CompactionBench {
    @Param({"8192"})
    public int blockBytes;

    @Param({"0.5", "0.9"})
    public double freeFraction;

    @Param({"8"})
    public int slabs;

    private SlabAllocator allocator;

    /** Per-iteration counters; JMH reports OPERATIONS counters normalised per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Moved {
        public long bytesMoved;
        public long slabsReleased;

        @Setup(Level.Iteration)
        public void reset() {
            bytesMoved = 0;
            slabsReleased = 0;
        }
    }

    @Setup(Level.Invocation)
    public void fragment() {
        allocator = new SlabAllocator(blockBytes, 16L << 20, Long.MAX_VALUE);
        int n = slabs * allocator.blocksPerSlab();
        long[] h = new long[n];
        allocator.allocate(h, n);
        SplittableRandom rnd = new SplittableRandom(42);
        for (long handle : h) {
            if (rnd.nextDouble() < freeFraction) {
                allocator.release(handle);
            }
        }
    }

    @TearDown(Level.Invocation)
    public void close() {
        allocator.close();
    }

    @Benchmark
    public CompactionResult compact(Moved moved) {
        CompactionResult r = allocator.compact();
        moved.bytesMoved += r.bytesMoved();
        moved.slabsReleased += r.slabsReleased();
        return r;
    }
}
