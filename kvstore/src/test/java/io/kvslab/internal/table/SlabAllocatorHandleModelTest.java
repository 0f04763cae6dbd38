package io.kvslab.internal.table;

import io.kvslab.MemoryLimitExceededException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every handle the allocator hands out, by whichever path (a parked handle of the stripe, a stripe refill, the
 * monitor's slab path, a bulk call), checked against a plain model of ids and generations: an id is never handed out
 * while live, it comes back with exactly one more generation than it had each time it was freed (whichever path
 * freed it: a single release that parks it, a release that overflows the stripe, a bulk release), the reference
 * counts are exact, every handle of a freed block (stale, or the same handle freed twice) is rejected with
 * {@link InvalidBlockException} and changes nothing, an allocation is refused exactly when the live blocks fill
 * the limit (parked blocks never count), and the peak of live bytes is exact (one thread) although blocks taken from
 * a stripe pass no monitor. Run with one size class and with two (K and V blocks of different sizes, each class from
 * its own stripes, bulk calls asking for both).
 */
class SlabAllocatorHandleModelTest {
    private static final long BLOCK = 256;
    private static final int PER_SLAB = 8;
    /** The limit in blocks: 5 slabs; more than a stripe holds, so parking, refills, overflow and refusal all occur. */
    private static final int LIMIT = 5 * PER_SLAB;

    @Test
    void handlesGenerationsCountsLimitAndPeakMatchAModel() {
        for (long seed = 1; seed <= 6; seed++) {
            run(seed, 6_000, false);
        }
    }

    @Test
    void withTwoSizeClassesEachHandleComesFromItsClassAndThePeakIsExact() {
        for (long seed = 11; seed <= 13; seed++) {
            run(seed, 3_000, true);
        }
    }

    /**
     * With two classes V blocks are half as large (their slabs hold twice as many); the limit then is not a block
     * count, so allocations are never refused (the limit is checked by the one-class run).
     */
    private static void run(long seed, int steps, boolean twoClasses) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long valueBlock = twoClasses ? BLOCK / 2 : BLOCK;
        long limit = twoClasses ? Long.MAX_VALUE : LIMIT * BLOCK;
        try (SlabAllocator a = new SlabAllocator(BLOCK, valueBlock, PER_SLAB * BLOCK, limit, 0)) {
            Map<Long, Long> bytes = new HashMap<>();               // live handle -> its block's bytes
            long liveBytes = 0;
            long peak = 0;
            Map<Integer, Integer> generation = new HashMap<>();   // id -> the generation its next handle must carry
            Map<Long, Integer> live = new HashMap<>();             // live handle -> references
            List<Long> liveList = new ArrayList<>();
            List<Long> dead = new ArrayList<>();
            for (int step = 0; step < steps; step++) {
                int op = rnd.nextInt(100);
                String at = "seed " + seed + " step " + step + " op " + op;
                if (op < 35) {                                      // single allocate (stripe fast path or refill)
                    boolean value = twoClasses && rnd.nextBoolean();
                    if (!twoClasses && live.size() == LIMIT) {
                        assertThrows(MemoryLimitExceededException.class, a::allocate, at);
                    } else {
                        long h = value ? a.allocate(SlabAllocator.VALUE_CLASS) : a.allocate();
                        took(h, generation, live, liveList, at);
                        assertEquals(value ? valueBlock : BLOCK, a.segment(h).byteSize(), at + ": class of the block");
                        bytes.put(h, value ? valueBlock : BLOCK);
                        liveBytes += bytes.get(h);
                    }
                } else if (op < 45) {                               // bulk allocate (an append's call), all or nothing
                    int k = rnd.nextInt(rnd.nextInt(8) == 0 ? 40 : 5);   // mostly the stripes' size, some larger
                    int v = rnd.nextInt(5);
                    long[] out = new long[k + v + rnd.nextInt(2)];
                    if (!twoClasses && live.size() + k + v > LIMIT) {
                        assertThrows(MemoryLimitExceededException.class, () -> a.allocate(out, k, v), at);
                    } else {
                        a.allocate(out, k, v);
                        for (int i = 0; i < k + v; i++) {
                            long h = out[i];
                            took(h, generation, live, liveList, at);
                            long b = i < k ? BLOCK : valueBlock;
                            assertEquals(b, a.segment(h).byteSize(), at + ": class of block " + i);
                            bytes.put(h, b);
                            liveBytes += b;
                        }
                    }
                } else if (op < 75 && !liveList.isEmpty()) {        // single release (parks, or overflows the stripe)
                    long h = liveList.get(rnd.nextInt(liveList.size()));
                    int left = live.get(h) - 1;
                    assertEquals(left, a.release(h), at);
                    liveBytes -= dropped(h, left, generation, live, liveList, dead) ? bytes.remove(h) : 0;
                } else if (op < 82 && !liveList.isEmpty()) {        // bulk release of distinct handles
                    int n = 1 + rnd.nextInt(Math.min(5, liveList.size()));
                    Set<Long> pick = new HashSet<>();
                    while (pick.size() < n) {
                        pick.add(liveList.get(rnd.nextInt(liveList.size())));
                    }
                    long[] hs = pick.stream().mapToLong(Long::longValue).toArray();
                    a.releaseAll(hs, 0, hs.length);
                    for (long h : hs) {
                        liveBytes -= dropped(h, live.get(h) - 1, generation, live, liveList, dead) ? bytes.remove(h) : 0;
                    }
                } else if (op < 90 && !liveList.isEmpty()) {        // share a block
                    long h = liveList.get(rnd.nextInt(liveList.size()));
                    a.addReference(h);
                    live.put(h, live.get(h) + 1);
                } else if (op < 98 && !dead.isEmpty()) {            // a stale handle or a double free: rejected
                    long h = dead.get(rnd.nextInt(dead.size()));
                    assertThrows(InvalidBlockException.class, () -> a.release(h), at);
                    assertThrows(InvalidBlockException.class, () -> a.addReference(h), at);
                    assertThrows(InvalidBlockException.class, () -> a.releaseAll(new long[] {h}, 0, 1), at);
                    assertFalse(a.isLive(h), at);
                } else {
                    a.compact();                                     // drains the stripes; handles stay valid
                }
                peak = Math.max(peak, liveBytes);
                if (step % 97 == 0) {
                    assertEquals(peak, a.stats().peakLiveBytes(), at + ": peak of live bytes");
                    for (Map.Entry<Long, Integer> e : live.entrySet()) {
                        assertEquals(e.getValue(), a.refCount(e.getKey()), at);
                    }
                    assertEquals(live.size(), a.liveBlocks(), at + ": parked blocks are not live");
                }
            }
            long[] rest = new long[live.values().stream().mapToInt(Integer::intValue).sum()];
            int i = 0;
            for (Map.Entry<Long, Integer> e : live.entrySet()) {
                for (int r = 0; r < e.getValue(); r++) {
                    rest[i++] = e.getKey();
                }
            }
            a.releaseAll(rest, 0, rest.length);
            assertEquals(0, a.closeAndCountLive());
        }
    }

    /** A handle just handed out: its id is not live and carries the generation the model expects. */
    private static void took(long h, Map<Integer, Integer> generation, Map<Long, Integer> live, List<Long> liveList,
                             String at) {
        int id = (int) h;
        int gen = (int) (h >>> 32);
        for (long other : live.keySet()) {
            if ((int) other == id) {
                throw new AssertionError(at + ": id " + id + " handed out while live");
            }
        }
        assertEquals(generation.getOrDefault(id, 1), gen, at + ": generation of id " + id);
        live.put(h, 1);
        liveList.add(h);
    }

    /**
     * A reference dropped; at zero the id's next handle carries one more generation and this one is dead (true:
     * the block was freed).
     */
    private static boolean dropped(long h, int left, Map<Integer, Integer> generation, Map<Long, Integer> live,
                                   List<Long> liveList, List<Long> dead) {
        if (left > 0) {
            live.put(h, left);
            return false;
        }
        live.remove(h);
        liveList.remove(h);
        generation.put((int) h, (int) (h >>> 32) + 1);
        dead.add(h);
        return true;
    }
}
