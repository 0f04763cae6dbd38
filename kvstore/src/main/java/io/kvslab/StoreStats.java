package io.kvslab;



/**
 * A snapshot of a store's memory.
 *
 * @param memory         the allocator's accounting (reserved, live, peaks, slabs, occupancy bins)
 * @param openSequences  sequences not yet closed
 */
public record StoreStats(AllocatorStats memory, int openSequences) {
    public long reservedBytes() {
        return memory.reservedBytes();
    }

    public long liveBytes() {
        return memory.liveBytes();
    }

    public long peakReservedBytes() {
        return memory.peakReservedBytes();
    }

    public long liveBlocks() {
        return memory.liveBlocks();
    }
}
