package io.kvslab;

import io.kvslab.internal.table.RawBlocks;
import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrefixCacheTest {
    static final int LAYERS = 2;
    static final int KV_HEADS = 2;
    static final int DIM = 4;
    static final int TPB = 4;
    static final KvLayout LAYOUT = new KvLayout(LAYERS, 2, KV_HEADS, DIM, DType.F32, TPB);
    /** K/V blocks one cached token block holds. */
    static final int BLOCKS_PER_ENTRY = 2 * LAYERS * KV_HEADS;

    static float kv(int l, int h, int token, long p, int d, boolean key) {
        return (float) Math.sin(token * 0.77 + p * 0.13 + l * 3.1 + h * 1.7 + d * 0.9 + (key ? 0 : 5));
    }

    /** Prefills tokens[from..) at positions from.. (what a runner would compute). */
    static void prefill(Sequence s, int[] tokens, int from) {
        for (int l = 0; l < LAYERS; l++) {
            for (int p = from; p < tokens.length; p++) {
                float[] k = new float[KV_HEADS * DIM];
                float[] v = new float[KV_HEADS * DIM];
                for (int h = 0; h < KV_HEADS; h++) {
                    for (int d = 0; d < DIM; d++) {
                        k[h * DIM + d] = kv(l, h, tokens[p], p, d, true);
                        v[h * DIM + d] = kv(l, h, tokens[p], p, d, false);
                    }
                }
                s.append(l, k, v, p);
            }
        }
    }

    static void assertHoldsTokens(Sequence s, int[] tokens) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < KV_HEADS; h++) {
                assertEquals(tokens.length, s.length(l, h));
                float[] k = new float[tokens.length * DIM];
                float[] v = new float[tokens.length * DIM];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                for (int p = 0; p < tokens.length; p++) {
                    assertEquals(p, s.positions(l, h)[p]);
                    for (int d = 0; d < DIM; d++) {
                        assertEquals(kv(l, h, tokens[p], p, d, true), k[p * DIM + d]);
                        assertEquals(kv(l, h, tokens[p], p, d, false), v[p * DIM + d]);
                    }
                }
            }
        }
    }

    static int[] tokens(int seed, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = seed * 1000 + i;
        }
        return t;
    }

    @Test
    void closingTheStoreBeforeItsPrefixCacheNamesTheCacheAsTheHolder() {
        KvStore store = KvStore.open(LAYOUT);
        PrefixCache cache = PrefixCache.create(store);
        int[] prompt = tokens(3, 8);
        try (Sequence s = store.newSequence()) {
            prefill(s, prompt, 0);
            assertEquals(2, cache.insert(s, prompt, 0));
        }
        LeakedBlocksException e = assertThrows(LeakedBlocksException.class, store::close);
        assertEquals(0, e.openSequences());
        assertEquals(2L * BLOCKS_PER_ENTRY, e.liveBlocks());
        assertTrue(e.getMessage().contains(2L * BLOCKS_PER_ENTRY + " blocks of open prefix caches")
                && e.getMessage().contains("close each Sequence and PrefixCache"), e.getMessage());
        assertEquals(0, store.stats().reservedBytes(), "freed anyway");
        cache.close();
    }

    @Test
    void aSecondRequestReusesTheCachedBlocksOfItsPrefix() {
        try (KvStore store = KvStore.open(LAYOUT); PrefixCache cache = PrefixCache.create(store)) {
            int[] prompt = tokens(1, 10);   // 2 full blocks + 2 tokens
            try (Sequence first = store.newSequence()) {
                prefill(first, prompt, 0);
                assertEquals(2, cache.insert(first, prompt, 0));
                assertEquals(0, cache.insert(first, prompt, 0), "already cached");
                long live = store.stats().liveBytes();

                // Same system prompt, different question: the first 8 tokens match.
                int[] second = Arrays.copyOf(prompt, 13);
                second[9] = 77;
                second[12] = 78;
                PrefixMatch m = cache.lookup(second, 0);
                try (Sequence s = m.sequence()) {
                    assertEquals(8, m.matchedTokens());
                    assertEquals(live, store.stats().liveBytes(), "a hit allocates nothing");
                    assertArrayEquals(Arrays.copyOf(RawBlocks.blockIds(first, 1, 1, true), 2),
                            RawBlocks.blockIds(s, 1, 1, true), "the cached blocks themselves");
                    prefill(s, second, 8);
                    assertHoldsTokens(s, second);
                    assertHoldsTokens(first, prompt);   // cached blocks were not written
                }
                PrefixCacheStats st = cache.stats();
                assertEquals(2, st.hitBlocks());
                assertEquals(1, st.missBlocks(), "13 tokens = 3 full blocks, the third missed");
                assertEquals(2, st.entries());
                assertEquals(2L * BLOCKS_PER_ENTRY, st.cachedBlocks());
                assertEquals(2, store.metrics().prefixHitBlocks());
            }
        }
    }

    @Test
    void chainedHashesNameTheWholePrefixAndTheSalt() {
        int[] a = {1, 2, 3, 4, 5, 6, 7, 8};
        int[] b = {9, 2, 3, 4, 5, 6, 7, 8};
        long[] ha = PrefixCache.chainedHashes(a, 0, TPB);
        long[] hb = PrefixCache.chainedHashes(b, 0, TPB);
        assertEquals(2, ha.length);
        assertNotEquals(ha[0], hb[0]);
        assertNotEquals(ha[1], hb[1], "same second block after a different first block");
        assertNotEquals(ha[1], PrefixCache.chainedHashes(a, 1, TPB)[1], "salt");
        assertArrayEquals(ha, PrefixCache.chainedHashes(a.clone(), 0, TPB), "deterministic");
        assertEquals(1, PrefixCache.chainedHashes(Arrays.copyOf(a, 7), 0, TPB).length, "only full blocks");
    }

    @Test
    void saltsIsolateTenantsAndPartialBlocksNeverMatch() {
        try (KvStore store = KvStore.open(LAYOUT); PrefixCache cache = PrefixCache.create(store);
             Sequence s = store.newSequence()) {
            int[] prompt = tokens(2, 8);
            prefill(s, prompt, 0);
            cache.insert(s, prompt, 11);
            try (Sequence other = cache.lookup(prompt, 12).sequence()) {
                assertEquals(0, other.length(0, 0), "another tenant's salt misses");
            }
            PrefixMatch same = cache.lookup(prompt, 11);
            assertEquals(8, same.matchedTokens());
            same.sequence().close();
            PrefixMatch shortQuery = cache.lookup(Arrays.copyOf(prompt, 3), 11);
            assertEquals(0, shortQuery.matchedTokens());
            shortQuery.sequence().close();
            int[] firstDiffers = prompt.clone();
            firstDiffers[0] = -5;
            PrefixMatch none = cache.lookup(firstDiffers, 11);
            assertEquals(0, none.matchedTokens(), "a later block never matches without its prefix");
            none.sequence().close();
        }
    }

    @Test
    void onlyTheUncompressedPrefixStartingAtZeroIsCached() {
        try (KvStore store = KvStore.open(LAYOUT); PrefixCache cache = PrefixCache.create(store);
             Sequence s = store.newSequence()) {
            int[] prompt = tokens(3, 12);
            prefill(s, prompt, 0);
            s.keep(1, 0, new int[] {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11});   // drops row 6 of one head
            assertEquals(1, cache.insert(s, prompt, 0), "block 1 holds a compressed head");
            try (Sequence offset = store.newSequence()) {
                prefill(offset, prompt, 0);
                offset.shiftPositions(0, Sequence.END, 1);
                assertEquals(0, cache.insert(offset, tokens(4, 12), 0), "positions must start at 0");
            }
            assertThrows(KvArgumentException.class, () -> cache.insert(s, null, 0));
        }
    }

    @Test
    void unreferencedEntriesAreEvictedLeastRecentlyUsedLeafFirst() {
        long entryBytes = BLOCKS_PER_ENTRY * LAYOUT.blockBytes();
        try (KvStore store = KvStore.open(LAYOUT); PrefixCache cache = PrefixCache.create(store)) {
            int[] p1 = tokens(1, 8);
            int[] p2 = tokens(2, 8);
            int[] p3 = tokens(3, 8);
            for (int[] p : new int[][] {p1, p2, p3}) {
                try (Sequence s = store.newSequence()) {
                    prefill(s, p, 0);
                    cache.insert(s, p, 0);
                }
            }
            assertEquals(6L * entryBytes, store.stats().liveBytes(), "only the cache holds blocks now");
            cache.lookup(p1, 0).sequence().close();   // p1 becomes the most recently used
            // LRU order now: p2 leaf, p2 root, p3 leaf, p3 root, p1 leaf, p1 root.
            assertEquals(entryBytes, cache.evict(1));
            assertEquals(4, matched(cache, p2), "p2 lost its leaf block first");
            // Order: p3 leaf, p3 root, p1 leaf, p1 root, p2 root.
            assertEquals(2 * entryBytes, cache.evict(2 * entryBytes));
            assertEquals(0, matched(cache, p3));
            assertEquals(8, matched(cache, p1));
            assertEquals(4, matched(cache, p2));
            assertEquals(3L * entryBytes, store.stats().liveBytes());

            // Entries in use by a sequence are never evicted.
            PrefixMatch held = cache.lookup(p1, 0);
            assertEquals(entryBytes, cache.evict(Long.MAX_VALUE), "only p2's root was free");
            assertEquals(8, matched(cache, p1));
            held.sequence().close();
            assertEquals(2L * entryBytes, cache.evict(Long.MAX_VALUE));
            assertEquals(0, store.stats().liveBytes());
            assertEquals(6L * BLOCKS_PER_ENTRY, cache.stats().evictedBlocks());
        }
    }

    private static int matched(PrefixCache cache, int[] tokens) {
        PrefixMatch m = cache.lookup(tokens, 0);
        m.sequence().close();
        return m.matchedTokens();
    }

    @Test
    void aCapacityBoundEvictsOnInsert() {
        try (KvStore store = KvStore.open(LAYOUT);
             PrefixCache cache = PrefixCache.create(store, 3L * BLOCKS_PER_ENTRY)) {
            int[] p1 = tokens(1, 8);
            int[] p2 = tokens(2, 8);
            for (int[] p : new int[][] {p1, p2}) {
                try (Sequence s = store.newSequence()) {
                    prefill(s, p, 0);
                    cache.insert(s, p, 0);
                }
            }
            assertEquals(3, cache.stats().entries());
            assertEquals(8, matched(cache, p2));
            assertEquals(4, matched(cache, p1), "p1's leaf (least recently used) made room for p2's second block");
            assertEquals(BLOCKS_PER_ENTRY, cache.stats().evictedBlocks());
        }
    }

    @Test
    void memoryPressureEvictsCachedPrefixesBeforeFailing() {
        long block = LAYOUT.blockBytes();
        // Room for 24 blocks: three cached token blocks (8 each) fill it.
        try (KvStore store = KvStore.open(LAYOUT, new StoreConfig(24 * block, 24 * block));
             PrefixCache cache = PrefixCache.create(store)) {
            int[] old = tokens(1, 8);
            int[] recent = tokens(2, 4);
            for (int[] p : new int[][] {old, recent}) {
                try (Sequence s = store.newSequence()) {
                    prefill(s, p, 0);
                    cache.insert(s, p, 0);
                }
            }
            assertEquals(24 * block, store.stats().liveBytes());
            // A new request needs 8 blocks: the store asks the cache, which drops the LRU leaf (old's block 1).
            try (Sequence s = store.newSequence()) {
                prefill(s, tokens(3, 1), 0);
                assertEquals(1, s.length(1, 1));
            }
            assertEquals(4, matched(cache, old));
            assertEquals(4, matched(cache, recent));
            assertEquals(1, store.metrics().pressureRelieved());
            assertEquals(BLOCKS_PER_ENTRY, store.metrics().prefixEvictedBlocks());
        }
    }

    @Test
    void closedCachesReleaseTheirBlocks() {
        KvStore store = KvStore.open(LAYOUT);
        PrefixCache cache = PrefixCache.create(store);
        try (Sequence s = store.newSequence()) {
            prefill(s, tokens(1, 8), 0);
            cache.insert(s, tokens(1, 8), 0);
        }
        assertTrue(store.stats().liveBytes() > 0);
        cache.close();
        assertEquals(0, store.stats().liveBytes());
        assertThrows(ClosedException.class, () -> cache.lookup(tokens(1, 8), 0));
        store.close();   // no leak reported
    }
}
