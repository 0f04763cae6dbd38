package io.kvslab.snapshot;

import io.kvslab.internal.table.BlockStaging;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.internal.table.TableImage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The aliasing table carries any block sharing, including keys shared across layers (PoD-style). */
class SnapshotSharingTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F32, 4);

    @TempDir
    Path dir;

    /** Raw F32 rows: {@code rows} rows of block {@code b}, each element a distinct value. */
    private static byte[] rows(int b, int rows) {
        ByteBuffer buf = ByteBuffer.allocate(rows * 8 * 4).order(ByteOrder.nativeOrder());
        for (int i = 0; i < rows * 8; i++) {
            buf.putFloat(b * 1000 + i + 0.25f);
        }
        return buf.array();
    }

    /**
     * Layer 1 uses layer 0's K blocks (cross-layer key sharing) with its own V blocks; 6 rows per table, so two
     * blocks per table (4 + 2 rows).
     */
    private static Sequence crossLayerKeys(KvStore store) {
        try (BlockStaging staging = RawBlocks.stage(store, 12)) {
            for (int b = 0; b < 12; b++) {
                int n = b % 2 == 0 ? 4 : 2;
                staging.write(b, rows(b, n), 0, n);
            }
            long[] positions = {0, 1, 2, 3, 4, 5};
            TableImage[][] image = {
                {new TableImage(positions, new int[] {0, 1}, new int[] {2, 3}),
                 new TableImage(positions, new int[] {4, 5}, new int[] {6, 7})},
                {new TableImage(positions, new int[] {0, 1}, new int[] {8, 9}),
                 new TableImage(positions, new int[] {4, 5}, new int[] {10, 11})}};
            return staging.commit(List.<TableImage[][]>of(image)).get(0);   // List.of(array) would spread it
        }
    }

    @Test
    void crossLayerKeySharingRoundTrips() {
        Path file = dir.resolve("pod.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = crossLayerKeys(store)) {
            assertArrayEquals(RawBlocks.blockIds(s, 0, 1, true), RawBlocks.blockIds(s, 1, 1, true));
            assertEquals(12 * LAYOUT.blockBytes(), store.stats().liveBytes());
            SnapshotInfo info = Snapshots.save(s, file);
            assertEquals(12, info.blocks());
            assertEquals(4, info.sharedBlocks(), "K blocks 0, 1, 4, 5 are named by two layers");
            try (KvStore other = KvStore.open(LAYOUT); Sequence r = Snapshots.restore(other, file)) {
                SnapshotRoundTripTest.assertSameContents(s, r);
                assertEquals(SnapshotRoundTripTest.sharingPattern(List.of(s)),
                        SnapshotRoundTripTest.sharingPattern(List.of(r)));
                assertEquals(12 * LAYOUT.blockBytes(), other.stats().liveBytes());
                byte[] layer0Keys = Rows.raw(r, 0, 0, true);
                // Appending to layer 1 copies its shared K tail: layer 0's keys stay as they were.
                r.append(1, new float[16], new float[16], 6);
                assertArrayEquals(layer0Keys, Rows.raw(r, 0, 0, true));
                assertEquals(7, r.length(1, 0));
                assertEquals(6, r.length(0, 0));
            }
        }
    }

    @Test
    void aRestoreUnderMemoryPressureEvictsCachedPrefixes() {
        Path file = dir.resolve("seq.kvs");
        try (KvStore source = KvStore.open(LAYOUT); Sequence s = source.newSequence()) {
            Rows.fill(s, 0, 8);                                          // 16 blocks
            Snapshots.save(s, file);
        }
        long block = LAYOUT.blockBytes();
        try (KvStore store = KvStore.open(LAYOUT, new StoreConfig(24 * block, 24 * block));
             PrefixCache cache = PrefixCache.create(store)) {
            int[] tokens = {5, 6, 7, 8, 9, 10, 11, 12};
            try (Sequence cached = store.newSequence()) {
                Rows.fill(cached, 0, 8);
                cache.insert(cached, tokens, 0);                         // 16 blocks, unreferenced after close
            }
            try (Sequence r = Snapshots.restore(store, file)) {          // needs 16 blocks, 8 free
                assertEquals(8, r.length(1, 1));
            }
            assertTrue(store.metrics().pressureRelieved() >= 1);
            assertEquals(8, cache.stats().evictedBlocks(), "one token block (8 K/V blocks) made room");
        }
    }
}
