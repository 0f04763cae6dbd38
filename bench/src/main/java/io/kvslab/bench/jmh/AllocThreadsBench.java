package io.kvslab.bench.jmh;

import io.kvslab.internal.table.AllocatorWorkload;
import io.kvslab.internal.table.SlabAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
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
 * Block alloc + free with several threads on ONE allocator at once (run with JMH's {@code -t 1}, {@code 2},
 * {@code 4}; {@link AllocBenchRunner} does): KVSlab's {@link SlabAllocator} shared by all threads, against one
 * Netty pooled allocator with thread caches shared the same way. JMH's worker threads usually have consecutive
 * thread ids and so map to different stripes of the slab allocator's thread cache; two that meet on one stripe part
 * after their first collision (the allocator moves the waiting thread on). Scores are ns per block per thread; on a machine
 * with fewer cores than threads the threads also take turns on the cores, which inflates both allocators alike.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Dio.netty.leakDetection.level=disabled"})
public class AllocThreadsBench {
    /** The allocators every thread shares. */
    @State(Scope.Benchmark)
    public static class Shared {
        @Param({"8192"})
        public int blockBytes;

        SlabAllocator slab;
        PooledByteBufAllocator nettyCached;

        @Setup(Level.Trial)
        public void setup() {
            slab = new SlabAllocator(blockBytes, 16L << 20, Long.MAX_VALUE);
            nettyCached = new PooledByteBufAllocator(true, 0, PooledByteBufAllocator.defaultNumDirectArena(),
                    PooledByteBufAllocator.defaultPageSize(), PooledByteBufAllocator.defaultMaxOrder(),
                    PooledByteBufAllocator.defaultSmallCacheSize(), PooledByteBufAllocator.defaultNormalCacheSize(),
                    true);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            slab.close();
        }
    }

    /** Each thread's view of the shared slab allocator. */
    @State(Scope.Thread)
    public static class PerThread {
        AllocatorWorkload workload;

        @Setup(Level.Trial)
        public void setup(Shared shared) {
            workload = new AllocatorWorkload(shared.slab, 1);
        }
    }

    @Benchmark
    public long slab(PerThread t) {
        return t.workload.allocateAndFreeOne();
    }

    @Benchmark
    public long nettyThreadCache(Shared s) {
        ByteBuf b = s.nettyCached.directBuffer(s.blockBytes, s.blockBytes);
        long a = b.memoryAddress();
        b.release();
        return a;
    }
}
