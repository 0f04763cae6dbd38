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
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * Cost of getting and returning one KV block (default 8 KiB = 32 tokens x 128 dims x f16), four ways:
 * <ul>
 *   <li>{@code slab*}: KVSlab's {@link SlabAllocator} (blocks carved from 16 MiB slabs, generation-checked
 *       handles; single blocks through its striped thread cache, bulk calls through its monitor);</li>
 *   <li>{@code netty*}: Netty's {@link PooledByteBufAllocator#directBuffer(int, int)} + {@code release()}
 *       (jemalloc-style arenas). With Netty's defaults only its own FastThreadLocalThreads get a thread-local cache,
 *       so a plain thread (like JMH's, or an inference thread) takes an arena lock: {@code netty}. The
 *       {@code nettyThreadCache} variant turns the cache on for all threads (useCacheForAllThreads).</li>
 *   <li>{@code arenaConfined*} / {@code arenaShared*}: one {@link Arena} per block, {@code allocate} + {@code close}
 *       (what KVSlab avoids: an Arena also zeroes its memory, and closing a shared one needs a thread handshake).</li>
 * </ul>
 * {@code slabAppendCall} gets its block through the call an append makes ({@code FreshBlocks}: the bulk
 * {@code allocate(long[], k, v)}, which takes small requests from the same stripe) rather than the single-block
 * {@code allocate()}, which no table operation calls. The single variants free right away (the allocator's hot path); the {@code Batch} variants hold 256 blocks before
 * freeing them, so free lists and slab bins actually move. Scores are ns per block (alloc + free).
 *
 * <pre>java -jar bench/target/kvslab.jar bench alloc          (or: java -cp bench/target/kvslab.jar org.openjdk.jmh.Main AllocBench)</pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
// Netty's leak detector samples 1 buffer in 128 by default; switched off so that only the allocators are compared.
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Dio.netty.leakDetection.level=disabled"})
@State(Scope.Thread)
public class AllocBench {
    static final int BATCH = 256;

    @Param({"8192"})
    public int blockBytes;

    private SlabAllocator slab;
    private PooledByteBufAllocator netty;
    private PooledByteBufAllocator nettyCached;
    private AllocatorWorkload workload;
    private final ByteBuf[] bufs = new ByteBuf[BATCH];
    private final Arena[] arenas = new Arena[BATCH];

    @Setup(Level.Trial)
    public void setup() {
        slab = new SlabAllocator(blockBytes, 16L << 20, Long.MAX_VALUE);
        netty = new PooledByteBufAllocator(true);
        nettyCached = new PooledByteBufAllocator(true, 0, PooledByteBufAllocator.defaultNumDirectArena(),
                PooledByteBufAllocator.defaultPageSize(), PooledByteBufAllocator.defaultMaxOrder(),
                PooledByteBufAllocator.defaultSmallCacheSize(), PooledByteBufAllocator.defaultNormalCacheSize(), true);
        // Warm the pools so the first iteration does not pay for the first slab / chunk.
        workload = new AllocatorWorkload(slab, BATCH);
        workload.allocateAndFreeOne();
        netty.directBuffer(blockBytes, blockBytes).release();
        nettyCached.directBuffer(blockBytes, blockBytes).release();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        slab.close();
    }

    @Benchmark
    public long slab() {
        return workload.allocateAndFreeOne();
    }

    /** One block the way an append gets it (the table layer's bulk call, through the same stripe) and a keep frees it. */
    @Benchmark
    public long slabAppendCall() {
        return workload.allocateAndFreeOneAsAppend();
    }

    @Benchmark
    public long netty() {
        ByteBuf b = netty.directBuffer(blockBytes, blockBytes);
        long a = b.memoryAddress();
        b.release();
        return a;
    }

    @Benchmark
    public long nettyThreadCache() {
        ByteBuf b = nettyCached.directBuffer(blockBytes, blockBytes);
        long a = b.memoryAddress();
        b.release();
        return a;
    }

    @Benchmark
    public long arenaConfined() {
        try (Arena a = Arena.ofConfined()) {
            return a.allocate(blockBytes, 64).address();
        }
    }

    @Benchmark
    public long arenaShared() {
        try (Arena a = Arena.ofShared()) {
            return a.allocate(blockBytes, 64).address();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void slabBatch(Blackhole bh) {
        bh.consume(workload.allocateAndFreeBatch());
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void slabBatchOneByOne(Blackhole bh) {
        bh.consume(workload.allocateAndFreeBatchOneByOne());
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void nettyBatch(Blackhole bh) {
        for (int i = 0; i < BATCH; i++) {
            bufs[i] = netty.directBuffer(blockBytes, blockBytes);
        }
        bh.consume(bufs);
        for (int i = 0; i < BATCH; i++) {
            bufs[i].release();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void nettyThreadCacheBatch(Blackhole bh) {
        for (int i = 0; i < BATCH; i++) {
            bufs[i] = nettyCached.directBuffer(blockBytes, blockBytes);
        }
        bh.consume(bufs);
        for (int i = 0; i < BATCH; i++) {
            bufs[i].release();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void arenaConfinedBatch(Blackhole bh) {
        for (int i = 0; i < BATCH; i++) {
            arenas[i] = Arena.ofConfined();
            MemorySegment s = arenas[i].allocate(blockBytes, 64);
            bh.consume(s.address());
        }
        for (int i = 0; i < BATCH; i++) {
            arenas[i].close();
        }
    }
}
