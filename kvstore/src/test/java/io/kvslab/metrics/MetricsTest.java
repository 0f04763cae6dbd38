package io.kvslab.metrics;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.CompactionResult;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class MetricsTest {
    /** 2 layers x 2 KV heads = 4 tables; 4 rows per block; 10 rows = 3 blocks per table, 24 blocks with V. */
    static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F32, 4);
    static final long BLOCK = LAYOUT.blockBytes();

    @Test
    void storeAndSequenceMetricsAccountForSharingEvictionAndPeaks() {
        try (KvStore store = KvStore.open(LAYOUT, StoreConfig.defaults().withSlabBytes(8 * BLOCK))) {
            Sequence a = store.newSequence();
            Fixture.fill(a, 0, 10);
            Sequence b = a.fork();

            StoreMetrics m = store.metrics();
            assertEquals(24, m.liveBlocks());
            assertEquals(24 * BLOCK, m.liveBytes());
            assertEquals(store.stats().reservedBytes(), m.reservedBytes());
            assertEquals(3, m.slabs());
            assertEquals(3, m.slabsByOccupancy()[5], "three full slabs of 8 blocks");
            assertArrayEquals(new long[] {0, 0, 0, 0, 0, 24}, m.blocksByOccupancy());
            assertEquals(2, m.openSequences());
            SequenceMetrics am = m.sequence(a.id());
            assertEquals(24 * BLOCK, am.referencedBytes());
            assertEquals(0, am.exclusiveBytes(), "everything shared with the fork");
            assertEquals(24 * BLOCK, am.sharedBytes());
            assertEquals(40, am.rows());
            assertEquals(10, am.maxRows());

            // The fork writes: it copies the 8 shared partial tails, and each side now owns 8 blocks alone.
            Fixture.fill(b, 10, 11);
            assertEquals(8 * BLOCK, a.metrics().exclusiveBytes());
            assertEquals(8 * BLOCK, b.metrics().exclusiveBytes());
            assertEquals(32 * BLOCK, store.metrics().liveBytes());

            // Compression (retain) and removal are counted separately; peaks stay.
            a.keep(0, 1, new int[] {0, 9});
            b.removePositions(0, 2);
            StoreMetrics after = store.metrics();
            assertEquals(8, after.rowsEvicted());
            assertEquals(8, after.sequence(a.id()).rowsEvicted());
            assertEquals(0, after.sequence(b.id()).rowsEvicted());
            assertEquals(4 * 2, after.rowsRemoved(), "positions 0 and 1 in 4 tables");
            assertEquals(24 * BLOCK, after.sequence(a.id()).peakReferencedBytes());
            assertEquals(20 * BLOCK, after.sequence(a.id()).referencedBytes(), "two rows need 1 block instead of 3");
            // Peak: 32 live, then removing rows 0-1 from b rebuilds b's three tables still shared with a: their
            // first two blocks (shared) into 2 + 2 fresh blocks each, their third (b's own tail since b wrote token
            // 10) in place; the old shared blocks stay with a (table (0, 1) is b's alone: all in place).
            assertEquals((32 + 3 * 4) * BLOCK, after.peakLiveBytes());
            assertEquals((32 + 3 * 4) * BLOCK, after.liveBytes(), "b's exclusive tails were rewritten in place");
            long sumBins = Arrays.stream(after.blocksByOccupancy()).sum();
            assertEquals(after.liveBlocks(), sumBins);
            assertEquals(after.slabs(), Arrays.stream(after.slabsByOccupancy()).sum());

            b.close();
            CompactionResult r = store.compact();
            StoreMetrics compacted = store.metrics();
            assertEquals(1, compacted.compactions());
            assertEquals(r.blocksMoved(), compacted.blocksMoved());
            assertNull(compacted.sequence(b.id()), "closed sequences are not listed");
            assertEquals(List.of(a.id()), compacted.sequences().stream().map(SequenceMetrics::sequenceId).toList());
            a.close();
        }
    }

    @Test
    void metricsRecordsAreSnapshots() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Fixture.fill(s, 0, 5);
            StoreMetrics m = store.metrics();
            m.blocksByOccupancy()[0] = 999;
            m.slabsByOccupancy()[0] = 999;
            assertEquals(m.liveBlocks(), Arrays.stream(m.blocksByOccupancy()).sum());
            assertEquals(1, Arrays.stream(m.slabsByOccupancy()).sum());
            Fixture.fill(s, 5, 9);
            assertEquals(16, m.liveBlocks(), "an old snapshot does not change");
            assertEquals(24, store.metrics().liveBlocks());
            assertEquals(1.0, m.overheadRatio() * m.liveBytes() / m.reservedBytes(), 1e-12);
        }
    }
}
