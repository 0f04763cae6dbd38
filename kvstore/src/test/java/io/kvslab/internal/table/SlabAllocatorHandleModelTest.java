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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every handle the allocator hands out, by whichever path (a parked handle of the stripe, a stripe refill, the
 * monitor's slab path, a bulk call), checked against a plain model of ids and generations: an id is never handed out
 * while live, it comes back with exactly one more generation than it had each time it was freed (whichever path
 * freed it: a single release that parks it, a release that overflows the stripe, a bulk release), the reference
 * counts are exact, every handle of a freed block (stale, or the same handle freed twice) is rejected with
 * {@link InvalidBlockException} and changes nothing, and an allocation is refused exactly when the live blocks fill
 * the limit (parked blocks never count).
 */
class SlabAllocatorHandleModelTest {
    private static final long BLOCK = 256;
    private static final int PER_SLAB = 8;
    /** The limit in blocks: 5 slabs; more than a stripe holds, so parking, refills, overflow and refusal all occur. */
    private static final int LIMIT = 5 * PER_SLAB;

    @Test
    void handlesGenerationsCountsAndLimitMatchAModel() {
        for (long seed = 1; seed <= 6; seed++) {
            run(seed, 6_000);
        }
    }

    private static void run(long seed, int steps) {
        SplittableRandom rnd = new SplittableRandom(seed);
        try (SlabAllocator a = new SlabAllocator(BLOCK, PER_SLAB * BLOCK, LIMIT * BLOCK)) {
            Map<Integer, Integer> generation = new HashMap<>();   // id -> the generation its next handle must carry
            Map<Long, Integer> live = new HashMap<>();             // live handle -> references
            List<Long> liveList = new ArrayList<>();
            List<Long> dead = new ArrayList<>();
            for (int step = 0; step < steps; step++) {
                int op = rnd.nextInt(100);
                String at = "seed " + seed + " step " + step;
                if (op < 35) {                                      // single allocate (stripe fast path or refill)
                    if (live.size() == LIMIT) {
                        assertThrows(MemoryLimitExceededException.class, a::allocate, at);
                    } else {
                        took(a.allocate(), generation, live, liveList, at);
                    }
                } else if (op < 42) {                               // bulk allocate, all or nothing
                    int n = 1 + rnd.nextInt(6);
                    long[] out = new long[n];
                    if (live.size() + n > LIMIT) {
                        assertThrows(MemoryLimitExceededException.class, () -> a.allocate(out, n), at);
                    } else {
                        a.allocate(out, n);
                        for (long h : out) {
                            took(h, generation, live, liveList, at);
                        }
                    }
                } else if (op < 75 && !liveList.isEmpty()) {        // single release (parks, or overflows the stripe)
                    long h = liveList.get(rnd.nextInt(liveList.size()));
                    int left = live.get(h) - 1;
                    assertEquals(left, a.release(h), at);
                    dropped(h, left, generation, live, liveList, dead);
                } else if (op < 82 && !liveList.isEmpty()) {        // bulk release of distinct handles
                    int n = 1 + rnd.nextInt(Math.min(5, liveList.size()));
                    Set<Long> pick = new HashSet<>();
                    while (pick.size() < n) {
                        pick.add(liveList.get(rnd.nextInt(liveList.size())));
                    }
                    long[] hs = pick.stream().mapToLong(Long::longValue).toArray();
                    a.releaseAll(hs, 0, hs.length);
                    for (long h : hs) {
                        dropped(h, live.get(h) - 1, generation, live, liveList, dead);
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
                if (step % 97 == 0) {
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
        for (long other : liveList) {
            assertTrue((int) other != id, at + ": id " + id + " handed out while live");
        }
        assertEquals(generation.getOrDefault(id, 1), gen, at + ": generation of id " + id);
        live.put(h, 1);
        liveList.add(h);
    }

    /** A reference dropped; at zero the id's next handle carries one more generation and this one is dead. */
    private static void dropped(long h, int left, Map<Integer, Integer> generation, Map<Long, Integer> live,
                                List<Long> liveList, List<Long> dead) {
        if (left > 0) {
            live.put(h, left);
            return;
        }
        live.remove(h);
        liveList.remove(h);
        generation.put((int) h, (int) (h >>> 32) + 1);
        dead.add(h);
    }
}
