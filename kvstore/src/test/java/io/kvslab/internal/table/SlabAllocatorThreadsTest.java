package io.kvslab.internal.table;

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

    /** Writes the handle into every word of its block: a block handed to two owners would be overwritten. */
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
