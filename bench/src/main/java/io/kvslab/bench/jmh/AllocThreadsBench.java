package io.kvslab.bench.jmh;

import io.kvslab.internal.table.AllocatorWorkload;
import io.kvslab.internal.table.SlabAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
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

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.TimeUnit;

/**
 * Block alloc + free with several threads on ONE allocator at once (run with JMH's {@code -t 1}, {@code 2},
 * {@code 4}; {@link AllocBenchRunner} does): KVSlab's {@link SlabAllocator} shared by all threads, against one
 * Netty pooled allocator with thread caches shared the same way. JMH's worker threads usually have consecutive
 * thread ids and so map to different stripes of the slab allocator's thread cache; two that meet on one stripe part
 * after their first collision (the allocator moves the waiting thread on). Scores are ns per block per thread, in wall
 * time: a thread that waits for a core (fewer cores than threads, or other processes on them; with 2 threads on this
 * 2-core machine any other runnable process) does no blocks meanwhile, so its wall ns per block grows by the time it
 * waited, whatever the allocator. Each thread therefore also reports its CPU time and wall time over every iteration
 * ({@link CpuClock}, secondary results {@code cpuNs} and {@code wallNs}, summed over the threads): the wall score times
 * {@code cpuNs / wallNs} is the CPU ns per block, which the waiting does not inflate (stalls on a cache line that
 * another thread writes are CPU time, so sharing still shows in it, as far as the threads ran at the same time).
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

    /**
     * This thread's CPU time and wall time over one iteration (read in the worker thread at the iteration's setup and
     * teardown, which JMH runs before it reads the counters).
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class CpuClock {
        private static final ThreadMXBean MX = ManagementFactory.getThreadMXBean();
        public long cpuNs;
        public long wallNs;
        private long cpuStart;
        private long wallStart;

        @Setup(Level.Iteration)
        public void start() {
            cpuNs = 0;
            wallNs = 0;
            cpuStart = MX.getCurrentThreadCpuTime();
            wallStart = System.nanoTime();
        }

        @TearDown(Level.Iteration)
        public void stop() {
            cpuNs = MX.getCurrentThreadCpuTime() - cpuStart;
            wallNs = System.nanoTime() - wallStart;
        }
    }

    @Benchmark
    public long slab(PerThread t, CpuClock clock) {
        return t.workload.allocateAndFreeOne();
    }

    @Benchmark
    public long nettyThreadCache(Shared s, CpuClock clock) {
        ByteBuf b = s.nettyCached.directBuffer(s.blockBytes, s.blockBytes);
        long a = b.memoryAddress();
        b.release();
        return a;
    }
}
