package io.kvslab;

import io.kvslab.internal.table.RawBlocks;
import io.kvslab.snapshot.Snapshots;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cross-layer key sharing (PoD): aliases read the base layer's keys, free exactly the own copies, and reference
 * counts keep every block alive while any table (of any sequence) names it.
 */
class KeySharingTest {
    private static final int LAYERS = 4;
    private static final int KV_HEADS = 2;
    private static final int DIM = 8;
    private static final int TPB = 4;
    private static final KvLayout LAYOUT = new KvLayout(LAYERS, 4, KV_HEADS, DIM, DType.F32, TPB);
    private static final long BLOCK = LAYOUT.blockBytes();

    static float value(int l, int h, long p, int d, boolean key) {
        return (float) Math.sin(0.7 + l * 5.3 + h * 2.9 + p * 0.41 + d * 1.7 + (key ? 0 : 13.0)) * 3f;
    }

    static void append(Sequence s, int layer, long p) {
        float[] k = new float[KV_HEADS * DIM];
        float[] v = new float[KV_HEADS * DIM];
        for (int h = 0; h < KV_HEADS; h++) {
            for (int d = 0; d < DIM; d++) {
                k[h * DIM + d] = value(layer, h, p, d, true);
                v[h * DIM + d] = value(layer, h, p, d, false);
            }
        }
        s.append(layer, k, v, p);
    }

    static void fill(Sequence s, long from, long to) {
        for (long p = from; p < to; p++) {
            for (int l = 0; l < LAYERS; l++) {
                append(s, l, p);
            }
        }
    }

    /** Rows the store must return: keyLayer[i] names the layer whose key of positions[i] is expected. */
    static float[] rows(int h, long[] positions, int[] keyLayer, int valueLayer, boolean key) {
        float[] x = new float[positions.length * DIM];
        for (int i = 0; i < positions.length; i++) {
            for (int d = 0; d < DIM; d++) {
                x[i * DIM + d] = value(key ? keyLayer[i] : valueLayer, h, positions[i], d, key);
            }
        }
        return x;
    }

    static float[] keys(Sequence s, int l, int h) {
        float[] x = new float[s.length(l, h) * DIM];
        s.readKeys(l, h, x);
        return x;
    }

    static float[] values(Sequence s, int l, int h) {
        float[] x = new float[s.length(l, h) * DIM];
        s.readValues(l, h, x);
        return x;
    }

    static int[] own(int layer, int n) {
        int[] x = new int[n];
        java.util.Arrays.fill(x, layer);
        return x;
    }

    /** Invariant: live bytes == distinct blocks named by the open sequences' tables x block bytes. */
    static void assertLiveMatchesTables(KvStore store, List<Sequence> open) {
        Set<Long> ids = new HashSet<>();
        for (Sequence s : open) {
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    for (long id : RawBlocks.blockIds(s, l, h, true)) {
                        ids.add(id);
                    }
                    for (long id : RawBlocks.blockIds(s, l, h, false)) {
                        ids.add(id);
                    }
                }
            }
        }
        assertEquals(ids.size() * BLOCK, store.stats().liveBytes(), "live bytes = distinct referenced blocks");
    }

    @Test
    void aliasReadsBaseKeysKeepsOwnValuesAndFreesOneBlock() {
        try (KvStore store = KvStore.open(LAYOUT)) {
            Sequence s = store.newSequence();
            fill(s, 0, 18);   // 5 blocks per table, the last holding 2 rows
            long live = store.stats().liveBytes();
            long referenced = s.referencedBytes();
            assertEquals(2L * LAYERS * KV_HEADS * 5 * BLOCK, live);

            assertTrue(s.aliasKeyBlock(2, 1, 1, 0));
            assertEquals(live - BLOCK, store.stats().liveBytes(), "the own K copy is freed");
            assertEquals(referenced, s.referencedBytes(), "referenced bytes count table references");
            assertTrue(s.isKeyBlockAliased(2, 1, 1));
            assertEquals(0, s.keyBlockBaseLayer(2, 1, 1));
            assertFalse(s.isKeyBlockAliased(2, 1, 0));
            assertFalse(s.isKeyBlockAliased(2, 0, 1), "other KV heads are untouched");
            assertEquals(2, s.keyBlockBaseLayer(2, 1, 0));

            long[] pos = s.positions(2, 1);
            int[] keyLayer = own(2, pos.length);
            for (int r = 4; r < 8; r++) {
                keyLayer[r] = 0;
            }
            assertArrayEquals(rows(1, pos, keyLayer, 2, true), keys(s, 2, 1));
            assertArrayEquals(rows(1, pos, null, 2, false), values(s, 2, 1), "values stay the layer's own");
            assertArrayEquals(rows(1, pos, own(0, pos.length), 0, true), keys(s, 0, 1), "base keys unchanged");

            assertFalse(s.aliasKeyBlock(2, 1, 1, 0), "aliasing twice is a no-op");
            assertEquals(live - BLOCK, store.stats().liveBytes());
            assertLiveMatchesTables(store, List.of(s));

            // Appending to the aliasing layer writes its own tail, never the base layer's block.
            append(s, 0, 18);
            append(s, 1, 18);
            append(s, 2, 18);
            assertArrayEquals(rows(1, s.positions(0, 1), own(0, 19), 0, true), keys(s, 0, 1));
            s.close();
            assertEquals(0, store.stats().liveBytes(), "close releases aliases and their base blocks");
        }
    }

    @Test
    void refusedAliasesChangeNothing() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            fill(s, 0, 18);
            long live = store.stats().liveBytes();
            float[] before = keys(s, 3, 0);
            // the partial tail (block 4 holds 2 rows)
            KvArgumentException tail = assertThrows(KvArgumentException.class, () -> s.aliasKeyBlock(3, 0, 4, 0));
            assertTrue(tail.getMessage().contains("only full blocks"), tail.getMessage());
            // base not below
            assertThrows(KvArgumentException.class, () -> s.aliasKeyBlock(1, 0, 0, 1));
            assertThrows(KvArgumentException.class, () -> s.aliasKeyBlock(1, 0, 0, 3));
            // out of range
            assertThrows(KvArgumentException.class, () -> s.aliasKeyBlock(3, 0, 5, 0));
            // after per-layer eviction the base holds other positions in block 1
            s.keep(0, 0, new int[] {0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12});
            KvArgumentException moved = assertThrows(KvArgumentException.class, () -> s.aliasKeyBlock(3, 0, 1, 0));
            assertTrue(moved.getMessage().contains("different positions"), moved.getMessage());
            // block 0 still matches: allowed; a demotion whose later block mismatches aliases nothing at all
            long afterRetain = store.stats().liveBytes();
            assertThrows(KvArgumentException.class, () -> s.shareDistantKeys(3, 0, 0, 0, 1, 17));
            assertEquals(afterRetain, store.stats().liveBytes());
            assertFalse(s.isKeyBlockAliased(3, 0, 0));
            assertArrayEquals(before, keys(s, 3, 0));
            assertThrows(KvArgumentException.class, () -> s.shareDistantKeys(3, 1, 0, -1, 4, 17));
            assertThrows(KvArgumentException.class, () -> s.shareDistantKeys(3, 1, 0, 4, 0, 17));
            assertEquals(live - 4 * BLOCK, afterRetain, "18 -> 12 rows: the retain freed two K and two V blocks of layer 0");
        }
    }

    @Test
    void closingOrForkingTheBaseOwnerNeverFreesAnAliasedBlock() {
        try (KvStore store = KvStore.open(LAYOUT)) {
            Sequence parent = store.newSequence();
            fill(parent, 0, 16);
            parent.aliasKeyBlock(3, 0, 1, 1);
            Sequence child = parent.fork();
            assertLiveMatchesTables(store, List.of(parent, child));
            parent.close();
            assertLiveMatchesTables(store, List.of(child));
            long[] pos = child.positions(3, 0);
            int[] keyLayer = own(3, 16);
            for (int r = 4; r < 8; r++) {
                keyLayer[r] = 1;
            }
            assertArrayEquals(rows(0, pos, keyLayer, 3, true), keys(child, 3, 0));
            assertArrayEquals(rows(0, pos, own(1, 16), 1, true), keys(child, 1, 0));
            // the child now aliases another block of its own
            long live = store.stats().liveBytes();
            assertTrue(child.aliasKeyBlock(3, 0, 2, 1));
            assertEquals(live - BLOCK, store.stats().liveBytes());
            child.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void aliasInAForkFreesNothingWhileTheParentHoldsTheOwnCopy() {
        try (KvStore store = KvStore.open(LAYOUT)) {
            Sequence parent = store.newSequence();
            fill(parent, 0, 12);
            Sequence child = parent.fork();
            long live = store.stats().liveBytes();
            assertTrue(child.aliasKeyBlock(2, 1, 0, 0));
            assertEquals(live, store.stats().liveBytes(), "the parent still references layer 2's own block");
            long[] pos = parent.positions(2, 1);
            assertArrayEquals(rows(1, pos, own(2, 12), 2, true), keys(parent, 2, 1), "the parent is unaffected");
            parent.close();
            assertEquals(live - BLOCK, store.stats().liveBytes(), "now the own copy is gone");
            assertLiveMatchesTables(store, List.of(child));
            child.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void retainOnEitherSideOfAnAliasKeepsTheOtherSideIntact() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            fill(s, 0, 16);
            s.aliasKeyBlock(1, 0, 1, 0);
            s.aliasKeyBlock(1, 0, 2, 0);
            // evict rows of the base layer: its shared table is rebuilt into fresh blocks
            s.keep(0, 0, new int[] {0, 2, 9, 15});
            assertArrayEquals(rows(0, new long[] {0, 2, 9, 15}, own(0, 4), 0, true), keys(s, 0, 0));
            long[] pos = s.positions(1, 0);
            int[] keyLayer = own(1, 16);
            for (int r = 4; r < 12; r++) {
                keyLayer[r] = 0;
            }
            assertArrayEquals(rows(0, pos, keyLayer, 1, true), keys(s, 1, 0), "layer 1 still reads the old base keys");
            assertEquals(1, s.keyBlockBaseLayer(1, 0, 1), "layer 0 was rebuilt: layer 1 alone owns the old base block");
            assertLiveMatchesTables(store, List.of(s));
            // evict rows of the aliasing layer: kept rows keep the keys they had (base keys in aliased blocks)
            s.keep(1, 0, new int[] {1, 5, 10, 14});
            assertArrayEquals(rows(0, new long[] {1, 5, 10, 14}, new int[] {1, 0, 0, 1}, 1, true), keys(s, 1, 0));
            assertLiveMatchesTables(store, List.of(s));
            s.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void compactionKeepsAliases() {
        try (KvStore store = KvStore.open(LAYOUT, new StoreConfig(Long.MAX_VALUE, 8 * BLOCK))) {
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            fill(a, 0, 16);
            fill(b, 0, 16);
            a.aliasKeyBlock(3, 1, 2, 2);
            b.close();   // leaves holes in the slabs
            store.compact();
            assertTrue(a.isKeyBlockAliased(3, 1, 2));
            assertEquals(RawBlocks.blockIds(a, 2, 1, true)[2], RawBlocks.blockIds(a, 3, 1, true)[2], "one physical block");
            int[] keyLayer = own(3, 16);
            for (int r = 8; r < 12; r++) {
                keyLayer[r] = 2;
            }
            assertArrayEquals(rows(1, a.positions(3, 1), keyLayer, 3, true), keys(a, 3, 1));
            assertLiveMatchesTables(store, List.of(a));
            a.close();
        }
    }

    /** Blocks of a table of {@code length} rows all of whose positions (= row index) lie in [sinks, t - recent]. */
    static int expectedDistantBlocks(int length, int sinks, int recent, long t) {
        int n = 0;
        for (int b = 0; (b + 1) * TPB <= length; b++) {
            boolean all = true;
            for (int p = b * TPB; p < (b + 1) * TPB; p++) {
                all &= p >= sinks && p <= t - recent;
            }
            n += all ? 1 : 0;
        }
        return n;
    }

    @Test
    void demotionAsDecodingMovesOnFreesExactlyTheNonBaseCopies() {
        int[][] base = {{0, 0, 2, 2}, {0, 1, 1, 1}};   // [kvHead][layer]
        int sinks = 3;
        int recent = 6;
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            fill(s, 0, 10);
            long aliasedTotal = 0;
            for (long t = 10; t < 41; t++) {
                fill(s, t, t + 1);
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KV_HEADS; h++) {
                        if (base[h][l] != l) {
                            aliasedTotal += s.shareDistantKeys(l, h, base[h][l], sinks, recent, t);
                        }
                    }
                }
                int length = (int) t + 1;
                long expectedAliases = 0;
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KV_HEADS; h++) {
                        if (base[h][l] != l) {
                            expectedAliases += expectedDistantBlocks(length, sinks, recent, t);
                        }
                    }
                }
                long blocksPerTable = (length + TPB - 1) / TPB;
                assertEquals(aliasedTotal, expectedAliases, "t = " + t);
                assertEquals((2L * LAYERS * KV_HEADS * blocksPerTable - expectedAliases) * BLOCK,
                        store.stats().liveBytes(), "t = " + t + ": live bytes drop by exactly the non-base copies");
            }
            // idempotent
            for (int l = 1; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    if (base[h][l] != l) {
                        assertEquals(0, s.shareDistantKeys(l, h, base[h][l], sinks, recent, 40));
                    }
                }
            }
            // keys: block-rounded PoD; the base layers keep their own keys everywhere
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    long[] pos = s.positions(l, h);
                    int[] keyLayer = own(l, pos.length);
                    for (int r = 0; r < pos.length; r++) {
                        int b = r / TPB;
                        boolean distantBlock = (b + 1) * TPB <= pos.length && b * TPB >= sinks
                                && (b + 1) * TPB - 1 <= 40 - recent;
                        if (distantBlock) {
                            keyLayer[r] = base[h][l];
                        }
                        assertEquals(keyLayer[r] != l, s.isKeyBlockAliased(l, h, b));
                    }
                    assertArrayEquals(rows(h, pos, keyLayer, l, true), keys(s, l, h), "layer " + l + " head " + h);
                    assertArrayEquals(rows(h, pos, null, l, false), values(s, l, h));
                }
            }
            assertLiveMatchesTables(store, List.of(s));
        }
    }

    @Test
    void demotedSequenceSurvivesASnapshotWithItsSavings(@TempDir Path dir) {
        Path file = dir.resolve("pod.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            fill(s, 0, 30);
            int aliased = s.shareDistantKeys(3, 0, 1, 4, 8, 29) + s.shareDistantKeys(2, 1, 0, 4, 8, 29);
            assertEquals(2 * 4, aliased, "blocks 1..4 (rows 4..19, positions <= 21) of two tables");
            Snapshots.save(s, file);
            try (KvStore other = KvStore.open(LAYOUT); Sequence r = Snapshots.restore(other, file)) {
                assertEquals(store.stats().liveBytes(), other.stats().liveBytes(), "aliases restored, not copied");
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KV_HEADS; h++) {
                        assertArrayEquals(keys(s, l, h), keys(r, l, h));
                        assertArrayEquals(values(s, l, h), values(r, l, h));
                        for (int b = 0; b < s.blockCount(l, h); b++) {
                            assertEquals(s.keyBlockBaseLayer(l, h, b), r.keyBlockBaseLayer(l, h, b));
                        }
                    }
                }
                assertEquals(1, r.keyBlockBaseLayer(3, 0, 2));
                assertEquals(0, r.shareDistantKeys(3, 0, 1, 4, 8, 29), "already demoted");
            }
        }
    }
}
