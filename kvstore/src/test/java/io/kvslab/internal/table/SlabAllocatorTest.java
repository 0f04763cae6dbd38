package io.kvslab.internal.table;

import io.kvslab.CompactionResult;
import io.kvslab.MemoryLimitExceededException;

import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SlabAllocatorTest {
    private static final long BLOCK = 256;

    /** Every block carries its own handle in each of its words, so any mix-up during moves is visible. */
    private static void stamp(SlabAllocator a, long h) {
        MemorySegment s = a.segment(h);
        for (long off = 0; off + 8 <= s.byteSize(); off += 8) {
            s.set(JAVA_LONG, off, h ^ off);
        }
    }

    private static void verify(SlabAllocator a, long h) {
        MemorySegment s = a.segment(h);
        for (long off = 0; off + 8 <= s.byteSize(); off += 8) {
            assertEquals(h ^ off, s.get(JAVA_LONG, off), "block content of handle " + Long.toHexString(h));
        }
        // The address must agree with the segment (both are what a kernel would read).
        assertEquals(s.address(), a.address(h));
    }

    @Test
    void randomAllocFreeCompactKeepsAccountingAndContents() {
        Random rnd = new Random(7);
        try (SlabAllocator a = new SlabAllocator(BLOCK, 64 * BLOCK, Long.MAX_VALUE)) {
            Map<Long, Integer> refs = new HashMap<>();
            List<Long> live = new ArrayList<>();
            for (int step = 0; step < 20_000; step++) {
                int op = rnd.nextInt(100);
                if (op < 45 || live.isEmpty()) {
                    long h = a.allocate();
                    stamp(a, h);
                    refs.put(h, 1);
                    live.add(h);
                } else if (op < 55) {
                    long h = live.get(rnd.nextInt(live.size()));
                    a.addReference(h);
                    refs.merge(h, 1, Integer::sum);
                } else if (op < 98) {
                    int i = rnd.nextInt(live.size());
                    long h = live.get(i);
                    int left = a.release(h);
                    int expected = refs.merge(h, -1, Integer::sum);
                    assertEquals(expected, left);
                    if (left == 0) {
                        refs.remove(h);
                        live.set(i, live.get(live.size() - 1));
                        live.remove(live.size() - 1);
                        assertFalse(a.isLive(h));
                        assertThrows(InvalidBlockException.class, () -> a.release(h), "double free");
                        assertThrows(InvalidBlockException.class, () -> a.segment(h), "use after free");
                    }
                } else {
                    a.compact();
                }
                AllocatorStats st = a.stats();
                assertEquals(live.size(), st.liveBlocks());
                assertEquals(live.size() * BLOCK, st.liveBytes());
                assertTrue(st.reservedBytes() >= st.liveBytes());
            }
            for (long h : live) {
                verify(a, h);
                assertEquals(refs.get(h), a.refCount(h));
            }
            // Free a random 90% and compact: the survivors are packed and the rest of the slabs go back to the OS.
            long before = a.stats().reservedBytes();
            for (int i = live.size() - 1; i >= 0; i--) {
                if (rnd.nextInt(10) != 0) {
                    long h = live.remove(i);
                    for (int r = refs.remove(h); r > 0; r--) {
                        a.release(h);
                    }
                }
            }
            CompactionResult c = a.compact();
            AllocatorStats st = a.stats();
            long slabsNeeded = (live.size() + 63) / 64;
            assertEquals(slabsNeeded, st.slabs(), "compaction leaves only the slabs the live blocks need");
            assertTrue(c.slabsReleased() > 0);
            assertTrue(st.reservedBytes() < before);
            for (long h : live) {
                verify(a, h);
            }
            for (long h : live) {
                for (int r = refs.get(h); r > 0; r--) {
                    a.release(h);
                }
            }
            a.compact();
            assertEquals(0, a.stats().liveBytes());
            assertEquals(0, a.stats().reservedBytes(), "all slabs returned after everything was freed");
        }
    }

    @Test
    void compactionMovesBlocksButKeepsHandles() {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, Long.MAX_VALUE)) {
            long[] h = new long[8];
            a.allocate(h, 8);                    // two full slabs
            for (long x : h) {
                stamp(a, x);
            }
            // Leave one block in each slab: slab 0 keeps h[0], slab 1 keeps h[4].
            for (int i : new int[] {1, 2, 3, 5, 6, 7}) {
                a.release(h[i]);
            }
            assertEquals(2, a.stats().slabs());
            long addressBefore = a.address(h[0]) == a.address(h[0]) ? a.address(h[4]) : 0;
            long epoch = a.relocationEpoch();
            CompactionResult r = a.compact();
            assertEquals(1, r.blocksMoved());
            assertEquals(BLOCK, r.bytesMoved());
            assertEquals(1, r.slabsReleased());
            assertEquals(1, a.stats().slabs());
            assertTrue(a.relocationEpoch() > epoch);
            verify(a, h[0]);
            verify(a, h[4]);
            assertTrue(addressBefore != 0);
        }
    }

    @Test
    void limitIsHardAndFailedAllocationChangesNothing() {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, 10 * BLOCK)) {
            long[] out = new long[10];
            a.allocate(out, 10);
            assertEquals(10 * BLOCK, a.stats().reservedBytes(), "the last slab is trimmed to the limit");
            AllocatorStats before = a.stats();
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class, a::allocate);
            assertEquals(BLOCK, e.requestedBytes());
            assertEquals(10 * BLOCK, e.limitBytes());
            assertEquals(10 * BLOCK, e.liveBytes());
            assertTrue(e.getMessage().contains("limit 2560"), e.getMessage());
            assertEquals(before.liveBlocks(), a.stats().liveBlocks());
            a.release(out[0]);
            a.release(out[1]);
            long[] three = new long[3];
            assertThrows(MemoryLimitExceededException.class, () -> a.allocate(three, 3), "all or nothing");
            assertEquals(8, a.stats().liveBlocks());
            a.allocate(three, 2);
            assertEquals(10, a.stats().liveBlocks());
        }
    }

    @Test
    void foreignAndStaleHandlesAreRejected() {
        try (SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, Long.MAX_VALUE);
             SlabAllocator b = new SlabAllocator(BLOCK, 4 * BLOCK, Long.MAX_VALUE)) {
            long h = a.allocate();
            assertThrows(InvalidBlockException.class, () -> b.address(h), "never issued by b");
            assertThrows(InvalidBlockException.class, () -> a.address(0L), "handle 0 is never valid");
            assertThrows(InvalidBlockException.class, () -> a.address(-1L));
            a.release(h);
            long h2 = a.allocate();   // reuses the id with a new generation
            assertEquals((int) h, (int) h2);
            assertNotEquals(h, h2);
            assertThrows(InvalidBlockException.class, () -> a.addReference(h), "stale generation");
            assertThrows(InvalidBlockException.class, () -> a.releaseAll(new long[] {h2, h}, 0, 2));
            assertEquals(1, a.refCount(h2), "a rejected releaseAll releases nothing");
        }
    }

    @Test
    void closeReportsLiveBlocksAndReturnsEverything() {
        SlabAllocator a = new SlabAllocator(BLOCK, 4 * BLOCK, Long.MAX_VALUE);
        a.allocate();
        a.allocate();
        assertEquals(2, a.closeAndCountLive());
        assertEquals(0, a.stats().reservedBytes());
        assertEquals(a.stats().slabsAcquired(), a.stats().slabsReleased());
        assertEquals(0, a.closeAndCountLive(), "idempotent");
    }

    @Test
    void badConstructionArgumentsAreRejected() {
        assertThrows(KvArgumentException.class, () -> new SlabAllocator(0, 1024, Long.MAX_VALUE));
        assertThrows(KvArgumentException.class, () -> new SlabAllocator(64, -1, Long.MAX_VALUE));
        assertThrows(KvArgumentException.class, () -> new SlabAllocator(64, 1024, 32));
    }

    @Test
    void twoSizeClassesCarveTheirOwnSlabsShareTheLimitAndCompactWithinTheirClass() {
        // K blocks of 320 bytes (q8_0, head dim 8, 32 rows) and V blocks of 192 (q4_0): slabs of 1920 bytes hold
        // 6 K blocks or 10 V blocks; the limit of 4 slabs' worth is shared by both classes.
        try (SlabAllocator a = new SlabAllocator(320, 192, 1920, 4 * 1920, 0)) {
            assertEquals(2, a.sizeClasses());
            assertEquals(320, a.blockBytes(SlabAllocator.KEY_CLASS));
            assertEquals(192, a.blockBytes(SlabAllocator.VALUE_CLASS));
            long[] h = new long[16];
            a.allocate(h, 6, 10);
            assertEquals(320, a.segment(h[0]).byteSize());
            assertEquals(192, a.segment(h[6]).byteSize());
            assertEquals(6 * 320 + 10 * 192, a.liveBytes());
            assertEquals(6, a.liveBlocks(SlabAllocator.KEY_CLASS));
            assertEquals(10, a.liveBlocks(SlabAllocator.VALUE_CLASS));
            assertEquals(2 * 1920, a.stats().reservedBytes(), "one full slab per class");
            assertEquals(6 * 320 + 10 * 192, a.stats().liveBytes());
            for (long x : h) {
                stamp(a, x);
            }
            // a K block and a V block need one new slab each; then the limit (4 slabs) is reached
            long k = a.allocate(SlabAllocator.KEY_CLASS);
            long v = a.allocate(SlabAllocator.VALUE_CLASS);
            stamp(a, k);
            stamp(a, v);
            assertEquals(4 * 1920, a.stats().reservedBytes());
            long[] more = new long[6];
            // 6 K blocks need a third K slab: over the shared limit, nothing allocated
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> a.allocate(more, 6, 0));
            assertEquals(6 * 320, e.requestedBytes());
            assertEquals(7 * 320 + 11 * 192, a.liveBytes());
            a.allocate(more, 5, 0);   // the K slab still has 5 free slots
            for (int i = 0; i < 5; i++) {
                stamp(a, more[i]);
            }
            // free most V blocks of the first V slab: compaction moves the survivors into the other V slab only
            for (int i = 6; i < 15; i++) {
                a.release(h[i]);
            }
            CompactionResult c = a.compact();
            assertEquals(1, c.blocksMoved(), "one V block joins the other V slab; no K block moves");
            assertEquals(192, c.bytesMoved());
            for (long x : new long[] {h[0], h[5], h[15], k, v, more[4]}) {
                verify(a, x);
            }
            assertEquals(12 * 320 + 2 * 192, a.liveBytes());
            assertEquals(3 * 1920, a.stats().reservedBytes(), "one V slab returned");
        }
    }
}
