package io.kvslab.bench.jmh;

import io.kvslab.CompactionResult;
import io.kvslab.internal.table.AllocatorWorkload;
import io.kvslab.internal.table.SlabAllocator;
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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Compaction throughput against a plain copy baseline, in one run.
 *
 * <p>{@code compact}: before each call, {@code slabs} full 16 MiB slabs of blocks are fragmented by freeing a random
 * {@code freeFraction} of the blocks (seeded: every invocation sees the same pattern); the call is one
 * {@code SlabAllocator.compact()}, which moves the blocks of the sparsest slabs into the fullest and returns the
 * emptied slabs. {@code memcpy}: copies the same volume block by block ({@code MemorySegment.copy} of
 * {@code blockBytes}) between two warm 64 MiB segments, the ceiling for moving blocks one at a time.
 *
 * <p>The {@code bytesMoved} counter is normalised per second by JMH: bytes/s of each. The primary score is calls
 * per second.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@State(Scope.Thread)
public class CompactionBench {
    static final long SLAB_BYTES = 16L << 20;
    static final long COPY_BYTES = 64L << 20;

    @Param({"8192"})
    public int blockBytes;

    @Param({"0.5", "0.9"})
    public double freeFraction;

    @Param({"8"})
    public int slabs;

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

    /** A freshly fragmented allocator for every call. */
    @State(Scope.Thread)
    public static class Fragmented {
        SlabAllocator allocator;

        @Setup(Level.Invocation)
        public void fragment(CompactionBench b) {
            allocator = new SlabAllocator(b.blockBytes, SLAB_BYTES, Long.MAX_VALUE);
            AllocatorWorkload.fragment(allocator, b.slabs, b.freeFraction, 42);
        }

        @TearDown(Level.Invocation)
        public void close() {
            allocator.close();
        }
    }

    /** Two warm segments for the copy baseline. */
    @State(Scope.Thread)
    public static class Buffers {
        Arena arena;
        MemorySegment from;
        MemorySegment to;

        @Setup(Level.Trial)
        public void allocate() {
            arena = Arena.ofShared();
            from = arena.allocate(COPY_BYTES, 64);
            to = arena.allocate(COPY_BYTES, 64);
            from.fill((byte) 1);
            to.fill((byte) 2);
        }

        @TearDown(Level.Trial)
        public void free() {
            arena.close();
        }
    }

    @Benchmark
    public CompactionResult compact(Fragmented f, Moved moved) {
        CompactionResult r = f.allocator.compact();
        moved.bytesMoved += r.bytesMoved();
        moved.slabsReleased += r.slabsReleased();
        return r;
    }

    /** Copies 64 MiB block by block: the same per-block MemorySegment.copy compaction does, without bookkeeping. */
    @Benchmark
    public MemorySegment memcpy(Buffers b, Moved moved) {
        for (long off = 0; off + blockBytes <= COPY_BYTES; off += blockBytes) {
            MemorySegment.copy(b.from, off, b.to, off, blockBytes);
        }
        moved.bytesMoved += COPY_BYTES - COPY_BYTES % blockBytes;
        return b.to;
    }
}
