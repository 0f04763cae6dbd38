package io.kvslab;

import io.kvslab.internal.table.AllocatorStats;
import io.kvslab.internal.table.TableStats;
import io.kvslab.metrics.SequenceMetrics;
import io.kvslab.metrics.StoreMetrics;

import java.util.ArrayList;
import java.util.List;

/** Builds metrics snapshots from a store's allocator, counters and block tables. Stateless. */
final class MetricsCollector {
    private MetricsCollector() {}

    static StoreMetrics store(KvStore store) {
        AllocatorStats a = store.tables.stats();
        long[] blocksByBin = store.tables.blocksByOccupancy();
        List<SequenceMetrics> sequences = new ArrayList<>();
        for (Sequence s : store.sequences()) {
            if (!s.isClosed()) {
                sequences.add(sequence(s));
            }
        }
        return new StoreMetrics(a.limitBytes(), a.reservedBytes(), a.liveBytes(), a.peakReservedBytes(),
                a.peakLiveBytes(), a.blockBytes(), a.liveBlocks(), a.slabs(), a.slabsByOccupancy(), blocksByBin,
                a.slabsAcquired(), a.slabsReleased(), store.rowsEvicted.sum(), store.rowsRemoved.sum(),
                store.compactions.sum(), store.blocksMoved.sum(), store.prefixHitBlocks.sum(),
                store.prefixMissBlocks.sum(), store.prefixCachedBlocks.get(), store.prefixEvictedBlocks.sum(),
                store.pressureEvents.sum(), store.pressureRelieved.sum(), sequences.size(), sequences);
    }

    /**
     * One sequence's view. Reads the tables without the sequence's lock (values may be a step old under a
     * concurrent writer; see {@code SequenceTables.stats}).
     */
    static SequenceMetrics sequence(Sequence s) {
        TableStats t = s.tables.stats();
        // Tables hold as many K blocks as V blocks, so referenced counts are pairs (K and V may differ in size).
        long pairBytes = s.layout.blockPairBytes();
        long referenced = t.referencedBlocks() / 2 * pairBytes;
        long exclusive = t.exclusiveBytes();
        return new SequenceMetrics(s.id(), referenced, exclusive, Math.max(0, referenced - exclusive),
                t.peakReferencedBlocks() / 2 * pairBytes, t.rows(), t.maxRows(), t.rowsEvicted());
    }
}
