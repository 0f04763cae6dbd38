package io.kvslab;



/**
 * A snapshot of a store's memory.
 *
 * @param memory         the allocator's accounting (reserved, live, peaks, slabs, occupancy bins)
 * @param openSequences  sequences not yet closed
 */
public record StoreStats(AllocatorStats memory, int openSequences) {
    /**
     * Native bytes held in slabs (what counts against the limit).
     *
     * @return {@code memory().reservedBytes()}
     */
    public long reservedBytes() {
        return memory.reservedBytes();
    }

    /**
     * Bytes of allocated blocks.
     *
     * @return {@code memory().liveBytes()}
     */
    public long liveBytes() {
        return memory.liveBytes();
    }

    /**
     * High-water mark of {@link #reservedBytes()} since the store opened.
     *
     * @return {@code memory().peakReservedBytes()}
     */
    public long peakReservedBytes() {
        return memory.peakReservedBytes();
    }

    /**
     * Blocks allocated now.
     *
     * @return {@code memory().liveBlocks()}
     */
    public long liveBlocks() {
        return memory.liveBlocks();
    }
}
