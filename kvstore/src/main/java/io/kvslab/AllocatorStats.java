package io.kvslab;

/**
 * A consistent snapshot of one allocator's accounting.
 *
 * @param blockBytes         size of every block
 * @param reservedBytes      native bytes held in slabs (what the OS has given us)
 * @param liveBytes          bytes of allocated blocks ({@code liveBlocks * blockBytes})
 * @param peakReservedBytes  high-water mark of {@code reservedBytes}
 * @param peakLiveBytes      high-water mark of {@code liveBytes}
 * @param liveBlocks         allocated blocks
 * @param slabs              slabs currently held
 * @param limitBytes         cap on {@code reservedBytes} ({@link Long#MAX_VALUE} when unlimited)
 * @param slabsByOccupancy   slabs per occupancy bin: [empty, (0,25%), [25,50%), [50,75%), [75,100%), full]
 * @param slabsAcquired      slabs ever acquired from the OS
 * @param slabsReleased      slabs ever returned to the OS
 */
public record AllocatorStats(long blockBytes, long reservedBytes, long liveBytes, long peakReservedBytes,
                             long peakLiveBytes, long liveBlocks, int slabs, long limitBytes, int[] slabsByOccupancy,
                             long slabsAcquired, long slabsReleased) {
    /**
     * Reserved over live bytes (1.0 = no overhead); {@code NaN} when nothing is live.
     *
     * @return {@code reservedBytes / liveBytes} ({@code >= 1}), or {@code NaN} when nothing is live
     */
    public double overheadRatio() {
        return liveBytes == 0 ? Double.NaN : (double) reservedBytes / liveBytes;
    }
}
