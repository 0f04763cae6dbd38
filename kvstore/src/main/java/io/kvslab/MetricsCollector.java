package io.kvslab;

import io.kvslab.internal.table.SlabAllocator;
import io.kvslab.metrics.SequenceMetrics;
import io.kvslab.metrics.StoreMetrics;

import java.util.ArrayList;
import java.util.List;

/** Builds metrics snapshots from a store's allocator, counters and block tables. Stateless. */
final class MetricsCollector {
    private MetricsCollector() {}

    static StoreMetrics store(KvStore store) {
        AllocatorStats a = store.allocator.stats();
        long[] blocksByBin = store.allocator.blocksByOccupancy();
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
     * One sequence's view. Reads the tables without the sequence's writer: local copies of counts and arrays
     * and {@link SlabAllocator#refCountIfLive} keep a concurrent mutation from throwing (values may then be a
     * step old).
     */
    static SequenceMetrics sequence(Sequence s) {
        SlabAllocator allocator = s.allocator;
        long blockBytes = s.layout.blockBytes();
        long exclusive = 0;
        long rows = 0;
        int maxRows = 0;
        for (HeadRows[] layer : s.heads) {
            for (HeadRows hr : layer) {
                int length = hr.length;
                int count = hr.blockCount;
                long[] keys = hr.keyBlocks;
                long[] values = hr.valueBlocks;
                rows += length;
                maxRows = Math.max(maxRows, length);
                for (int b = 0; b < Math.min(count, Math.min(keys.length, values.length)); b++) {
                    exclusive += allocator.refCountIfLive(keys[b]) == 1 ? blockBytes : 0;
                    exclusive += allocator.refCountIfLive(values[b]) == 1 ? blockBytes : 0;
                }
            }
        }
        long referenced = s.referencedBlocks * blockBytes;
        return new SequenceMetrics(s.id(), referenced, exclusive, Math.max(0, referenced - exclusive),
                s.peakReferencedBlocks * blockBytes, rows, maxRows, s.rowsEvicted);
    }
}
