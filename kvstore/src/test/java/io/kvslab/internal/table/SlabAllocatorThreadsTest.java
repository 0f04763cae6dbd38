package io.kvslab.internal.table;

import io.kvslab.MemoryLimitExceededException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The allocator's paths that take no allocator-wide lock (per-thread parked blocks, compare-and-set reference
 * counts, lock-free address reads) under several threads at once: no block is ever handed to two owners, shared
 * reference counts come out exact, parked blocks never cause a limit failure, and the counts are exact afterwards.
 */
class SlabAllocatorThreadsTest {
    private static final long BLOCK = 256;

    @Test
    void aFreedBlockIsReusedWithANewGenerationAndCountsStayExact() {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 16 * BLOCK, Long.MAX_VALUE)) {
            long h = a.allocate();
            assertEquals(0, a.release(h));
            assertFalse(a.isLive(h));
            assertEquals(0, a.liveBlocks(), "a parked block is not live");
            long h2 = a.allocate();
            assertEquals((int) h, (int) h2, "the parked id is handed out again");
            assertNotEquals(h, h2);
            assertThrows(InvalidBlockException.class, () -> a.release(h), "the old handle stays dead");
            assertEquals(1, a.refCount(h2));
            assertEquals(1, a.stats().liveBlocks());
            assertEquals(1, a.closeAndCountLive());
        }
    }

    @Test
    void blocksParkedByOneThreadDoNotMakeAnotherHitTheLimit() throws Exception {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, 10 * BLOCK);
             ExecutorService pool = Executors.newFixedThreadPool(2)) {
            long[] all = new long[10];
            pool.submit(() -> {
                a.allocate(all, 10);
                a.release(all[0]);   // parked in this thread's stripe
                a.release(all[1]);
            }).get();
            long[] two = pool.submit(() -> new long[] {a.allocate(), a.allocate()}).get();
            Thread other = Thread.ofPlatform().start(() -> {
                long[] more = new long[2];
                a.releaseAll(two, 0, 2);
                a.allocate(more, 2);   // bulk path: drains whatever is parked elsewhere
                a.releaseAll(more, 0, 2);
            });
            other.join();
            assertEquals(8, a.stats().liveBlocks());
            a.releaseAll(all, 2, 10);
            assertEquals(0, a.closeAndCountLive());
        }
    }

    @Test
    void concurrentAllocateReleaseAndSharedReferencesStayConsistent() throws Exception {
        int threads = 4;
        int shared = 8;
        int rounds = 20_000;
        try (SlabAllocator a = new SlabAllocator(BLOCK, 32 * BLOCK, Long.MAX_VALUE);
             ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            long[] common = new long[shared];
            a.allocate(common, shared);
            CyclicBarrier start = new CyclicBarrier(threads);
            List<Future<Long>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                results.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    List<Long> mine = new ArrayList<>();
                    int[] extra = new int[shared];
                    long checked = 0;
                    start.await();
                    for (int i = 0; i < rounds; i++) {
                        int op = rnd.nextInt(10);
                        if (op < 4 || mine.isEmpty()) {
                            long h = a.allocate();
                            stamp(a, h);
                            mine.add(h);
                        } else if (op < 7) {
                            long h = mine.remove(rnd.nextInt(mine.size()));
                            checked += verify(a, h);
                            assertEquals(0, a.release(h));
                        } else if (op < 9) {
                            int s = rnd.nextInt(shared);
                            a.addReference(common[s]);
                            extra[s]++;
                        } else {
                            int s = rnd.nextInt(shared);
                            if (extra[s] > 0) {
                                a.release(common[s]);
                                extra[s]--;
                            }
                        }
                    }
                    for (long h : mine) {
                        checked += verify(a, h);
                        a.release(h);
                    }
                    for (int s = 0; s < shared; s++) {
                        for (; extra[s] > 0; extra[s]--) {
                            a.release(common[s]);
                        }
                    }
                    return checked;
                }));
            }
            long checked = 0;
            for (Future<Long> f : results) {
                checked += f.get();
            }
            assertEquals(true, checked > 0);
            for (long h : common) {
                assertEquals(1, a.refCount(h), "every added reference was released exactly once");
            }
            assertEquals(shared, a.stats().liveBlocks());
            a.releaseAll(common, 0, shared);
            assertEquals(0, a.stats().liveBlocks());
            a.compact();
            assertEquals(0, a.stats().reservedBytes(), "compaction returns every slab once nothing is live");
        }
    }

    @Test
    void aRefillTakesFreeSlotsOfTheSlabInUseButNeverMapsASlab() {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, Long.MAX_VALUE, 0)) {
            long first = a.allocate();   // maps one slab of 4; the refill parks its 3 other slots in this stripe
            assertEquals(4 * BLOCK, a.reservedBytes());
            java.util.Set<Long> addresses = new java.util.HashSet<>();
            addresses.add(a.address(first));
            for (int i = 0; i < 3; i++) {
                long h = a.allocate();
                assertTrue(addresses.add(a.address(h)), "a refilled block handed out twice");
                assertEquals(4 * BLOCK, a.reservedBytes(), "refilled blocks come from the slab already mapped");
            }
            long fifth = a.allocate();   // stripe empty, slab full: a second slab, and nothing beyond it
            assertTrue(addresses.add(a.address(fifth)));
            assertEquals(8 * BLOCK, a.reservedBytes());
            assertEquals(5, a.stats().liveBlocks(), "the 3 refilled but unused blocks are not live");
            assertEquals(8 * BLOCK, a.reservedBytes(), "the second slab still holds a live block");
            assertEquals(5, a.closeAndCountLive());
        }
    }

    @Test
    void blocksParkedOrRefilledByManyThreadsAreReclaimedByCompactAndClose() throws Exception {
        // Platform and virtual threads each churn single blocks: every stripe they map to ends up holding parked
        // blocks (freed ones, and the extra ones a refill took from a slab), which count as taken slots.
        try (SlabAllocator a = new SlabAllocator(BLOCK, 16 * BLOCK, Long.MAX_VALUE, 0)) {
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                Runnable churn = () -> {
                    long[] held = new long[40];
                    for (int round = 0; round < 50; round++) {
                        for (int i = 0; i < held.length; i++) {
                            held[i] = a.allocate();
                            stamp(a, held[i]);
                        }
                        for (long h : held) {
                            verify(a, h);
                            assertEquals(0, a.release(h));
                        }
                    }
                };
                threads.add(t % 2 == 0 ? Thread.ofPlatform().start(churn) : Thread.ofVirtual().start(churn));
            }
            for (Thread t : threads) {
                t.join();
            }
            assertTrue(a.reservedBytes() > 0, "the churn left blocks parked in their slabs");
            AllocatorStats s = a.stats();
            assertEquals(0, s.liveBlocks(), "parked blocks are drained before statistics: none is live");
            assertEquals(0, s.liveBytes());
            a.compact();
            assertEquals(0, a.reservedBytes(), "compaction returns every slab once the parked blocks are drained");
            AllocatorStats after = a.stats();
            assertEquals(after.slabsAcquired(), after.slabsReleased());
            assertEquals(0, a.closeAndCountLive());
        }
    }

    @Test
    void blocksParkedInOtherStripesNeverRefuseAnAllocationUnderTheLimit() throws Exception {
        int limitBlocks = 64;
        try (SlabAllocator a = new SlabAllocator(BLOCK, 8 * BLOCK, limitBlocks * BLOCK, 0)) {
            // Four threads each take and free single blocks: their stripes keep them parked (and refilled).
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                threads.add(Thread.ofPlatform().start(() -> {
                    long[] held = new long[16];
                    for (int i = 0; i < held.length; i++) {
                        held[i] = a.allocate();
                    }
                    for (long h : held) {
                        a.release(h);
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
            // This thread's stripe is empty: every one of the limit's blocks must still come out, one at a time.
            long[] mine = new long[limitBlocks];
            for (int i = 0; i < limitBlocks; i++) {
                mine[i] = a.allocate();
                stamp(a, mine[i]);
            }
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class, a::allocate);
            assertEquals(limitBlocks * BLOCK, e.limitBytes());
            assertEquals(limitBlocks, a.stats().liveBlocks(), "the refused allocation allocated nothing");
            assertEquals(limitBlocks * BLOCK, a.reservedBytes());
            for (long h : mine) {
                verify(a, h);
            }
            a.releaseAll(mine, 0, mine.length);
            assertEquals(0, a.closeAndCountLive());
            assertEquals(0, a.reservedBytes());
        }
    }

    @Test
    void threadsHoldingTogetherExactlyTheLimitNeverSeeItRefused() throws Exception {
        int threads = 4;
        int perThread = 16;
        try (SlabAllocator a = new SlabAllocator(BLOCK, 8 * BLOCK, (long) threads * perThread * BLOCK, 0);
             ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            CyclicBarrier start = new CyclicBarrier(threads);
            List<Future<Long>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = 100 + t;
                results.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    long[] held = new long[perThread];
                    int n = 0;
                    long allocations = 0;
                    start.await();
                    for (int i = 0; i < 20_000; i++) {
                        if (n < perThread && (n == 0 || rnd.nextInt(3) != 0)) {
                            held[n] = a.allocate();   // the threads together never hold more than the limit
                            stamp(a, held[n++]);
                            allocations++;
                        } else {
                            int k = rnd.nextInt(n);
                            verify(a, held[k]);
                            assertEquals(0, a.release(held[k]));
                            held[k] = held[--n];
                        }
                        if (a.reservedBytes() > (long) threads * perThread * BLOCK) {
                            throw new AssertionError("reserved bytes above the limit: " + a.reservedBytes());
                        }
                    }
                    for (int k = 0; k < n; k++) {
                        a.release(held[k]);
                    }
                    return allocations;
                }));
            }
            long allocations = 0;
            for (Future<Long> f : results) {
                allocations += f.get();   // a MemoryLimitExceededException in any thread fails here
            }
            assertTrue(allocations > threads * perThread);
            assertEquals(0, a.stats().liveBlocks());
            assertEquals(0, a.closeAndCountLive());
            assertEquals(0, a.reservedBytes());
        }
    }

    @Test
    void aSmallBulkCallTakesTheBlocksItsStripeHoldsBeforeMappingASlab() {
        // slabs of 8 blocks, no spares: the first small bulk call maps a slab, takes 1 block and parks the slab's
        // other 7 slots in the stripe (a refill); the next asks for 9 of which the stripe holds 7
        try (SlabAllocator a = new SlabAllocator(BLOCK, 8 * BLOCK, Long.MAX_VALUE, 0)) {
            long[] first = new long[1];
            a.allocate(first, 1);
            assertEquals(8 * BLOCK, a.reservedBytes());
            long[] more = new long[9];
            a.allocate(more, 9);
            assertEquals(2 * 8 * BLOCK, a.reservedBytes(), "10 blocks fit in 2 slabs; parked ones must not cost a third");
            java.util.Set<Integer> distinct = new java.util.HashSet<>();
            distinct.add((int) first[0]);
            for (long h : more) {
                assertEquals(1, a.refCount(h));
                assertTrue(distinct.add((int) h), "an id handed out twice");
            }
            assertEquals(10, a.liveBlocks());
            a.releaseAll(more, 0, more.length);
            a.release(first[0]);
            assertEquals(0, a.closeAndCountLive());
        }
    }

    @Test
    void concurrentSingleAndBulkReleasesOfSharedBlocksFreeEachExactlyOnce() throws Exception {
        // Each block holds three references; three threads drop one each at once, two by single release (which
        // reports the count left) and one by bulk releaseAll (one monitor entry). Exactly one drop frees each block.
        int blocks = 3_000;
        try (SlabAllocator a = new SlabAllocator(BLOCK, 64 * BLOCK, Long.MAX_VALUE);
             ExecutorService pool = Executors.newFixedThreadPool(3)) {
            long[] handles = new long[blocks];
            for (int i = 0; i < blocks; i++) {
                handles[i] = a.allocate();
                a.addReference(handles[i]);
                a.addReference(handles[i]);
            }
            CyclicBarrier start = new CyclicBarrier(3);
            List<Future<Integer>> zeros = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                boolean bulk = t == 2;
                zeros.add(pool.submit(() -> {
                    start.await();
                    int freed = 0;
                    for (int i = 0; i < blocks; i++) {
                        if (bulk) {
                            a.releaseAll(handles, i, i + 1);
                        } else if (a.release(handles[i]) == 0) {
                            freed++;
                        }
                    }
                    return freed;
                }));
            }
            int freedBySingles = 0;
            for (Future<Integer> f : zeros) {
                freedBySingles += f.get();   // an InvalidBlockException (a lost or doubled count) fails here
            }
            assertTrue(freedBySingles <= blocks, "no block reported freed twice: " + freedBySingles);
            for (long h : handles) {
                assertFalse(a.isLive(h), "three references dropped: the block is freed");
            }
            assertEquals(0, a.stats().liveBlocks());
            // Every id is reusable exactly once: allocating as many blocks again yields distinct ids.
            long[] again = new long[blocks];
            java.util.Set<Long> distinct = new java.util.HashSet<>();
            for (int i = 0; i < blocks; i++) {
                again[i] = a.allocate();
                assertTrue(distinct.add(SlabAllocator.blockId(again[i])), "an id handed out twice");
            }
            a.releaseAll(again, 0, blocks);
            assertEquals(0, a.closeAndCountLive());
        }
    }

    /** Writes the handle into every word of its block: a block handed to two owners would be overwritten. */
    /**
     * Two threads whose ids fall on one stripe (ids a multiple of the stripe count apart) used to share its lock for
     * good; now the one that finds it held moves on to another stripe, and the block it frees there is handed out
     * again and counted exactly.
     */
    @Test
    void aThreadThatFindsItsStripeHeldMovesToAnother() throws Exception {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 16 * BLOCK, Long.MAX_VALUE)) {
            int mine = a.stripeIndexOf(Thread.currentThread());
            long[] got = new long[3];
            Runnable work = () -> {
                got[0] = a.allocate();
                got[2] = a.release(got[0]);   // 0: parked in the stripe it moved to
                got[1] = a.allocate();
            };
            Thread colliding = Thread.ofPlatform().unstarted(work);
            for (int tries = 0; tries < 10_000 && a.stripeIndexOf(colliding) != mine; tries++) {
                colliding = Thread.ofPlatform().unstarted(work);   // thread ids only grow: one lands on this stripe
            }
            assertEquals(mine, a.stripeIndexOf(colliding), "a thread whose id falls on this thread's stripe");
            ParkedBlocks held = a.stripe();
            held.lock();
            try {
                colliding.start();
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (a.stripeIndexOf(colliding) == mine && System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                }
                assertNotEquals(mine, a.stripeIndexOf(colliding), "the waiting thread moved its slot on");
            } finally {
                held.unlock();
            }
            colliding.join(10_000);
            assertFalse(colliding.isAlive());
            assertEquals(0, got[2]);
            assertEquals((int) got[0], (int) got[1], "the block it freed on its new stripe is handed out again");
            assertNotEquals(got[0], got[1], "under a new generation");
            assertEquals(1, a.liveBlocks());
            assertEquals(mine, a.stripeIndexOf(Thread.currentThread()), "the holder's stripe did not move");
            assertEquals(1, a.closeAndCountLive());
        }
    }

    /**
     * Two threads allocating and freeing blocks one at a time on one allocator, over ids of two pages of state words
     * (so ids 0, 512, ..., whose words sit next to a page's guard line, and the last ids of a page are in play): no
     * block is handed to two owners at once, every free bumps its id's generation exactly once (the generation a
     * handle carries equals the frees of its id before it), old handles stay dead, and the counts are exact after.
     */
    @Test
    void twoThreadsAllocatingAndFreeingSingleBlocksKeepOwnershipAndGenerationsExact() throws Exception {
        int ids = BlockIds.PAGE + 200;
        try (SlabAllocator a = new SlabAllocator(BLOCK, 64 * BLOCK, Long.MAX_VALUE);
             ExecutorService pool = Executors.newFixedThreadPool(2)) {
            long[] first = new long[ids];
            a.allocate(first, ids);   // issues ids 0 .. ids-1, each at generation 1
            for (long h : first) {
                assertEquals(1, (int) (h >>> 32), "a new id starts at generation 1");
            }
            a.releaseAll(first, 0, ids);
            java.util.concurrent.atomic.AtomicIntegerArray frees = new java.util.concurrent.atomic.AtomicIntegerArray(ids);
            java.util.concurrent.atomic.AtomicIntegerArray newest = new java.util.concurrent.atomic.AtomicIntegerArray(ids);
            for (int id = 0; id < ids; id++) {
                frees.set(id, 1);
                newest.set(id, 1);
            }
            CyclicBarrier start = new CyclicBarrier(2);
            List<Future<Long>> results = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                int seed = 17 + t;
                results.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    long[] held = new long[200];
                    long checked = 0;
                    start.await();
                    for (int round = 0; round < 3_000; round++) {
                        // mostly one block at a time (the benchmark's pattern), sometimes many (moving through ids)
                        int n = rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(held.length) : 1;
                        for (int i = 0; i < n; i++) {
                            long h = a.allocate();
                            int id = (int) h;
                            assertTrue(id >= 0 && id < ids, "no id beyond those issued while blocks were free: " + id);
                            assertEquals(1, a.refCount(h));
                            newest.accumulateAndGet(id, (int) (h >>> 32), Math::max);
                            stamp(a, h);
                            held[i] = h;
                        }
                        for (int i = 0; i < n; i++) {
                            long h = held[i];
                            checked += verify(a, h);
                            assertEquals(0, a.release(h));
                            frees.incrementAndGet((int) h);
                            assertFalse(a.isLive(h), "a freed handle is dead");
                            assertThrows(InvalidBlockException.class, () -> a.release(h));
                        }
                    }
                    return checked;
                }));
            }
            long checked = 0;
            for (Future<Long> f : results) {
                checked += f.get();
            }
            assertTrue(checked >= 2 * 3_000);
            assertEquals(0, a.liveBlocks(), "nothing live (the stripes' parked blocks drained back into their slabs)");
            // the next handle of every id carries one generation per free: allocate them all back and compare
            long[] again = new long[ids];
            a.allocate(again, ids);
            boolean[] seen = new boolean[ids];
            for (long h : again) {
                int id = (int) h;
                assertFalse(seen[id], "id " + id + " handed out twice");
                seen[id] = true;
                assertEquals(1 + frees.get(id), (int) (h >>> 32), "generation of id " + id + " after "
                        + frees.get(id) + " frees");
                assertTrue(newest.get(id) <= frees.get(id), "a handle seen of id " + id + " was newer than its frees");
            }
            assertEquals(ids, a.liveBlocks());
            a.releaseAll(again, 0, ids);
            assertEquals(0, a.closeAndCountLive());
        }
    }

    private static void stamp(SlabAllocator a, long h) {
        MemorySegment s = a.segment(h);
        for (long off = 0; off < BLOCK; off += 8) {
            s.set(JAVA_LONG, off, h ^ off);
        }
    }

    private static long verify(SlabAllocator a, long h) {
        MemorySegment s = a.segment(h);
        for (long off = 0; off < BLOCK; off += 8) {
            assertEquals(h ^ off, s.get(JAVA_LONG, off), "block of handle " + Long.toHexString(h) + " was reused "
                    + "while still owned");
        }
        assertEquals(s.address(), a.address(h));
        return 1;
    }
}
