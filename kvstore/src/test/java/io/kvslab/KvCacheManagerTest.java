package io.kvslab;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduler-facing memory API against hand-computed block counts. Layout: 2 layers x 2 KV heads, 4 tokens per
 * block, f32 rows of 4 floats: a block is 4 x 16 = 64 bytes, and one token block across the sequence is
 * 2 layers x 2 heads x (K + V) = 8 blocks.
 */
class KvCacheManagerTest {
    static final KvLayout LAYOUT = PrefixCacheTest.LAYOUT;
    static final long BLOCK = LAYOUT.blockBytes();

    static KvStore store(long blocks) {
        // the limit rounds down to whole blocks: 63 spare bytes must not add a block
        return KvStore.open(LAYOUT, new StoreConfig(blocks * BLOCK + BLOCK - 1, 5 * BLOCK));
    }

    static void append(Sequence s, int from, int n) {
        int[] tokens = new int[from + n];
        Arrays.fill(tokens, 7);
        PrefixCacheTest.prefill(s, tokens, from);
    }

    @Test
    void blocksToAppendCountsTailBlocksPerTable() {
        try (KvStore store = KvStore.open(LAYOUT)) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence s = store.newSequence();
            assertEquals(0, m.blocksToAppend(s, 0));
            assertEquals(8, m.blocksToAppend(s, 1));     // one block per table, K and V
            assertEquals(8, m.blocksToAppend(s, 4));
            assertEquals(16, m.blocksToAppend(s, 5));
            append(s, 0, 3);
            assertEquals(0, m.blocksToAppend(s, 1));     // the tail block has a free row in every table
            assertEquals(8, m.blocksToAppend(s, 2));
            append(s, 3, 5);                             // 8 rows: two full blocks per table
            assertEquals(8, m.blocksToAppend(s, 1));
            // compress one table: (layer 0, head 0) keeps 1 of 8 rows -> 1 block; the others keep 2 blocks
            s.keep(0, 0, new int[] {7});
            assertEquals(1, s.blockCount(0, 0));
            // 3 more rows: (0,0) 1+3 = 4 rows fit its one block -> 0; three tables 8+3 = 11 rows -> 3 blocks, +1 each
            assertEquals(3 * 2, m.blocksToAppend(s, 3));
            m.free(s);
        }
    }

    @Test
    void forkSharingAPartialTailCountsItsCopies() {
        try (KvStore store = KvStore.open(LAYOUT)) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence parent = store.newSequence();
            append(parent, 0, 3);
            Sequence child = parent.fork();
            // both share every (partial) tail block: the first append copies K and V of each of 4 tables
            assertEquals(8, m.blocksToAppend(child, 1));
            assertEquals(8, m.blocksToAppend(parent, 1));
            long live = store.stats().liveBlocks();
            assertTrue(m.reserve(child, 1));
            append(child, 3, 1);
            assertEquals(live + 8, store.stats().liveBlocks());
            assertEquals(0, m.pendingBlocks(child));     // the copies used the promise up
            assertEquals(0, m.blocksToAppend(parent, 1)); // the parent owns its tails alone now
            // a fork of full blocks shares nothing partial: only new blocks
            Sequence full = store.newSequence();
            append(full, 0, 4);
            Sequence fullChild = full.fork();
            assertEquals(8, m.blocksToAppend(fullChild, 1));
            assertEquals(8, m.blocksToAppend(fullChild, 4));
            for (Sequence s : new Sequence[] {parent, child, full, fullChild}) {
                m.free(s);
            }
            assertEquals(0, store.stats().liveBlocks());
            assertEquals(0, m.usage().pendingBlocks());
        }
    }

    @Test
    void reservationsSayNoWithoutChangingAnything() {
        try (KvStore store = store(20)) {
            KvCacheManager m = KvCacheManager.of(store);
            assertEquals(20, m.usage().capacityBlocks());
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            Sequence c = store.newSequence();
            assertTrue(m.reserve(a, 4));                 // 8 blocks
            assertFalse(m.reserve(b, 8));                // 16 more would be 24 > 20
            assertEquals(8, m.usage().pendingBlocks());
            assertEquals(0, m.pendingBlocks(b));
            assertTrue(m.reserve(b, 4));                 // 8 + 8 = 16
            assertEquals(4, m.usage().headroomBlocks());
            append(a, 0, 4);                             // a uses its promise: live 8, pending 8
            KvCacheUsage u = m.usage();
            assertEquals(8, u.liveBlocks());
            assertEquals(8, u.pendingBlocks());
            assertEquals(8 * BLOCK, u.liveBytes());
            assertEquals(4 * BLOCK, u.headroomBytes());
            assertFalse(m.reserve(c, 1));                // 8 > 4
            m.release(b);
            assertEquals(12, m.usage().headroomBlocks());
            assertTrue(m.reserve(c, 1));
            m.free(a);
            m.free(a);                                   // idempotent
            // a later reservation replaces the unused one: 8 then 16 (not 24, which would not fit), then 8
            assertTrue(m.reserve(c, 5));
            assertEquals(16, m.pendingBlocks(c));
            assertTrue(m.reserve(c, 1));
            assertEquals(8, m.pendingBlocks(c));
            // closing a sequence drops its promise
            c.close();
            assertEquals(0, m.usage().pendingBlocks());
            m.free(b);
            assertEquals(0, store.stats().liveBlocks());
        }
    }

    @Test
    void appendsAfterASuccessfulReservationNeverHitTheLimit() {
        try (KvStore store = store(40)) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence[] seqs = new Sequence[6];
            int[] len = new int[seqs.length];
            for (int i = 0; i < seqs.length; i++) {
                seqs[i] = store.newSequence();
            }
            int refused = 0;
            for (int step = 0; step < 40; step++) {
                // every sequence asks for 1 token (prompts of 3 for new ones); who gets room appends
                for (int i = 0; i < seqs.length; i++) {
                    int n = len[i] == 0 ? 3 : 1;
                    if (m.reserve(seqs[i], n)) {
                        append(seqs[i], len[i], n);   // would throw MemoryLimitExceededException if the promise lied
                        len[i] += n;
                    } else {
                        refused++;
                    }
                    assertTrue(store.stats().liveBlocks() + m.usage().pendingBlocks() <= 40);
                }
            }
            assertTrue(refused > 0, "the limit must have been reached");
            assertTrue(store.stats().liveBlocks() >= 40 - 8, "a refusal leaves less than one token block free");
            for (Sequence s : seqs) {
                m.free(s);
            }
        }
    }

    @Test
    void computedBlocksComeFromThePrefixCache() {
        try (KvStore store = KvStore.open(LAYOUT); PrefixCache cache = PrefixCache.create(store)) {
            KvCacheManager m = KvCacheManager.of(store);
            int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9};
            PrefixMatch none = m.computedBlocks(prompt, 0);   // no cache in use yet
            assertEquals(0, none.matchedBlocks());
            m.free(none.sequence());
            m.usePrefixCache(cache);
            Sequence s = store.newSequence();
            PrefixCacheTest.prefill(s, prompt, 0);
            assertEquals(2, cache.insert(s, prompt, 0));
            m.free(s);
            PrefixMatch hit = m.computedBlocks(prompt, 0);
            assertEquals(2, hit.matchedBlocks());
            assertEquals(8, hit.matchedTokens());
            assertEquals(2 * 8, hit.sequence().referencedBytes() / BLOCK);
            assertEquals(8, m.blocksToAppend(hit.sequence(), 1));   // cached blocks are full: new tails, no copies
            m.free(hit.sequence());
            // exactly two blocks long: the last token must still run, so only one block counts as computed
            PrefixMatch shorter = m.computedBlocks(Arrays.copyOf(prompt, 8), 0);
            assertEquals(1, shorter.matchedBlocks());
            m.free(shorter.sequence());
            PrefixMatch otherSalt = m.computedBlocks(prompt, 1);
            assertEquals(0, otherSalt.matchedBlocks());
            m.free(otherSalt.sequence());
        }
    }

    @Test
    void aReservationEvictsUnreferencedCachedPrefixes() {
        try (KvStore store = store(24); PrefixCache cache = PrefixCache.create(store)) {
            KvCacheManager m = KvCacheManager.of(store);
            int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8};
            Sequence s = store.newSequence();
            PrefixCacheTest.prefill(s, prompt, 0);
            cache.insert(s, prompt, 0);
            m.free(s);
            assertEquals(16, store.stats().liveBlocks());   // held by the cache alone
            Sequence t = store.newSequence();
            assertFalse(m.reserve(t, 5));                   // 16 blocks, 8 free, no cache in use
            m.usePrefixCache(cache);
            assertTrue(m.reserve(t, 5));
            assertTrue(cache.stats().evictedBlocks() >= 8);
            append(t, 0, 5);
            m.free(t);
        }
    }

    @Test
    void badInputIsATypedException() {
        try (KvStore store = KvStore.open(LAYOUT); KvStore other = KvStore.open(LAYOUT)) {
            KvCacheManager m = KvCacheManager.of(store);
            assertTrue(m == KvCacheManager.of(store));
            Sequence s = store.newSequence();
            assertThrows(KvArgumentException.class, () -> m.reserve(s, -1));
            Sequence foreign = other.newSequence();
            assertThrows(KvArgumentException.class, () -> m.reserve(foreign, 1));
            assertThrows(KvArgumentException.class, () -> m.free(foreign));
            assertThrows(KvArgumentException.class, () -> m.reserve(null, 1));
            assertThrows(KvArgumentException.class, () -> m.computedBlocks(null, 0));
            assertThrows(KvArgumentException.class, () -> KvCacheManager.of(null));
            s.close();
            assertThrows(ClosedException.class, () -> m.reserve(s, 1));
            foreign.close();
        }
    }

    /**
     * A reservation racing the sequence's close never outlives it: either reserve sees the sequence closed
     * (ClosedException) or the close drops the promise. Before the fix the open check and the promise were two
     * steps, and a close between them left a promise for a dead sequence (found within a few hundred rounds).
     */
    @Test
    void aReservationRacingCloseNeverOutlivesTheSequence() throws Exception {
        KvLayout layout = KvLayout.of(2, 4, 2, 64, DType.F16);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withLimitBytes(256L << 20))) {
            KvCacheManager m = KvCacheManager.of(store);
            for (int i = 0; i < 3000; i++) {
                Sequence s = store.newSequence();
                java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
                java.util.concurrent.Future<Boolean> reserve = pool.submit(() -> {
                    go.await();
                    try {
                        return m.reserve(s, 64);
                    } catch (ClosedException closed) {
                        return false;
                    }
                });
                java.util.concurrent.Future<?> close = pool.submit(() -> {
                    go.await();
                    s.close();
                    return null;
                });
                go.countDown();
                reserve.get();
                close.get();
                assertEquals(0, m.usage().pendingBlocks(), "round " + i + ": a promise outlived its closed sequence");
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
