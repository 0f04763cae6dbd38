package io.kvslab;

import io.kvslab.internal.table.AllocatorStats;

import java.util.Arrays;

/**
 * A consistent snapshot of a store's memory accounting and its open sequences ({@link KvStore#stats()}).
 *
 * @param blockBytes         size of every K block (V blocks have their own size when K and V types differ)
 * @param reservedBytes      native bytes held in slabs (what the OS has given the store; counts against the limit)
 * @param liveBytes          bytes of allocated blocks
 * @param peakReservedBytes  high-water mark of {@code reservedBytes} since the store opened
 * @param peakLiveBytes      high-water mark of {@code liveBytes}
 * @param liveBlocks         blocks allocated now
 * @param slabs              slabs currently held
 * @param limitBytes         cap on {@code reservedBytes} ({@link Long#MAX_VALUE} when unlimited)
 * @param slabsByOccupancy   slabs per occupancy bin: [empty, (0,25%), [25,50%), [50,75%), [75,100%), full]
 * @param slabsAcquired      slabs ever acquired from the OS
 * @param slabsReleased      slabs ever returned to the OS
 * @param openSequences      sequences not yet closed
 */
public record StoreStats(long blockBytes, long reservedBytes, long liveBytes, long peakReservedBytes,
                         long peakLiveBytes, long liveBlocks, int slabs, long limitBytes, int[] slabsByOccupancy,
                         long slabsAcquired, long slabsReleased, int openSequences) {
    /** The allocator's snapshot and the open sequences, as one value. */
    static StoreStats of(AllocatorStats a, int openSequences) {
        return new StoreStats(a.blockBytes(), a.reservedBytes(), a.liveBytes(), a.peakReservedBytes(),
                a.peakLiveBytes(), a.liveBlocks(), a.slabs(), a.limitBytes(), a.slabsByOccupancy(), a.slabsAcquired(),
                a.slabsReleased(), openSequences);
    }

    /**
     * Reserved over live bytes (1.0 = no overhead); {@code NaN} when nothing is live.
     *
     * @return {@code reservedBytes / liveBytes} ({@code >= 1}), or {@code NaN} when nothing is live
     */
    public double overheadRatio() {
        return liveBytes == 0 ? Double.NaN : (double) reservedBytes / liveBytes;
    }

    /** Every field by name, the occupancy bins element by element (the record default prints the array's identity). */
    @Override
    public String toString() {
        return "StoreStats[blockBytes=" + blockBytes + ", reservedBytes=" + reservedBytes + ", liveBytes=" + liveBytes
                + ", peakReservedBytes=" + peakReservedBytes + ", peakLiveBytes=" + peakLiveBytes + ", liveBlocks="
                + liveBlocks + ", slabs=" + slabs + ", limitBytes=" + limitBytes + ", slabsByOccupancy="
                + Arrays.toString(slabsByOccupancy) + ", slabsAcquired=" + slabsAcquired + ", slabsReleased="
                + slabsReleased + ", openSequences=" + openSequences + "]";
    }
}
