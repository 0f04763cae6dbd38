package io.kvslab.internal.table;

import io.kvslab.KvArgumentException;

import java.util.SplittableRandom;

/**
 * Allocation patterns run inside this package, for the allocator benchmarks: block handles never leave the table
 * package, so a benchmark names a pattern instead of holding handles. Each method is the whole measured
 * operation (no extra work beyond a call). Not thread-safe; one per benchmark thread.
 */
public final class AllocatorWorkload {
    private final SlabAllocator allocator;
    private final long[] handles;

    /** @param batch blocks held at once by the batch patterns, in [1, 2^20] */
    public AllocatorWorkload(SlabAllocator allocator, int batch) {
        if (allocator == null || batch < 1 || batch > (1 << 20)) {
            throw new KvArgumentException("allocator must not be null and batch in [1, 2^20], got " + batch);
        }
        this.allocator = allocator;
        this.handles = new long[batch];
    }

    /** Allocates one block and frees it; returns its (opaque) block id so the work cannot be elided. */
    public long allocateAndFreeOne() {
        long h = allocator.allocate();
        allocator.release(h);
        return SlabAllocator.blockId(h);
    }

    /**
     * Allocates one block through the call a table operation makes ({@link FreshBlocks}, as an append that fills its
     * tail block does: the bulk {@code allocate(long[], k, v)}) and frees it as a keep does (a single release);
     * returns its (opaque) block id.
     */
    public long allocateAndFreeOneAsAppend() {
        long h = FreshBlocks.allocate(allocator, 1, 0).take(true);
        allocator.release(h);
        return SlabAllocator.blockId(h);
    }

    /** Allocates {@code batch} blocks in one call, then frees them in one call; returns a checksum of ids. */
    public long allocateAndFreeBatch() {
        allocator.allocate(handles, handles.length);
        long sum = 0;
        for (long h : handles) {
            sum += h;
        }
        allocator.releaseAll(handles, 0, handles.length);
        return sum;
    }

    /** Allocates {@code batch} blocks one by one, then frees them one by one; returns a checksum of ids. */
    public long allocateAndFreeBatchOneByOne() {
        for (int i = 0; i < handles.length; i++) {
            handles[i] = allocator.allocate();
        }
        long sum = 0;
        for (long h : handles) {
            sum += h;
            allocator.release(h);
        }
        return sum;
    }

    /**
     * Fills {@code slabs} whole slabs of {@code allocator} (writing every block), then frees each block with probability
     * {@code freeFraction} (seeded): a fragmented allocator for the compaction benchmark. Returns blocks left live.
     */
    public static long fragment(SlabAllocator allocator, int slabs, double freeFraction, long seed) {
        long n = Math.multiplyExact((long) slabs, (long) allocator.blocksPerSlab());
        if (slabs < 1 || n > Integer.MAX_VALUE - 8 || !(freeFraction >= 0 && freeFraction <= 1)) {
            throw new KvArgumentException("slabs must be >= 1 with fewer than 2^31 blocks and freeFraction in [0, 1]");
        }
        long[] h = new long[(int) n];
        allocator.allocate(h, h.length);
        for (long handle : h) {
            allocator.segment(handle).fill((byte) 1);   // blocks hold data, as in a store (pages faulted in)
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        long live = n;
        for (long handle : h) {
            if (rnd.nextDouble() < freeFraction) {
                allocator.release(handle);
                live--;
            }
        }
        return live;
    }
}
