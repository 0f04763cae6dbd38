package io.kvslab.metrics;

import java.util.Arrays;
import java.util.List;

/**
 * A point-in-time view of one store: memory, slab occupancy, event counters and every open sequence. Counters
 * are cumulative since the store was opened. Arrays are copies owned by this record.
 *
 * @param limitBytes            cap on reserved bytes ({@link Long#MAX_VALUE} when unlimited)
 * @param reservedBytes         native bytes held in slabs
 * @param liveBytes             bytes of allocated blocks
 * @param peakReservedBytes     high-water mark of {@code reservedBytes}
 * @param peakLiveBytes         high-water mark of {@code liveBytes}
 * @param blockBytes            bytes per block
 * @param liveBlocks            allocated blocks
 * @param slabs                 slabs held
 * @param slabsByOccupancy      slabs per occupancy bin (see {@link #OCCUPANCY_BINS})
 * @param blocksByOccupancy     live blocks per occupancy bin of the slab they sit in
 * @param slabsAcquired         slabs ever taken from the OS
 * @param slabsReleased         slabs ever returned to the OS
 * @param rowsEvicted           rows dropped by {@code Sequence.keep} (compression policies)
 * @param rowsRemoved           rows dropped by sequence operations ({@code Sequence.removePositions})
 * @param compactions           {@code compact()} calls
 * @param blocksMoved           blocks moved by compaction
 * @param prefixHitBlocks       token blocks served from a prefix cache
 * @param prefixMissBlocks      full token blocks looked up and not found
 * @param prefixCachedBlocks    K/V blocks currently held by prefix caches
 * @param prefixEvictedBlocks   K/V blocks prefix caches dropped (LRU, capacity or pressure)
 * @param pressureEvents        allocations that hit the limit and consulted the pressure handlers
 * @param pressureRelieved      of those, rounds in which a handler freed memory (the allocation was retried)
 * @param openSequences         sequences not yet closed
 * @param sequences             per-sequence views, by sequence id
 */
public record StoreMetrics(long limitBytes, long reservedBytes, long liveBytes, long peakReservedBytes,
                           long peakLiveBytes, long blockBytes, long liveBlocks, int slabs, int[] slabsByOccupancy,
                           long[] blocksByOccupancy, long slabsAcquired, long slabsReleased, long rowsEvicted,
                           long rowsRemoved, long compactions, long blocksMoved, long prefixHitBlocks,
                           long prefixMissBlocks, long prefixCachedBlocks, long prefixEvictedBlocks,
                           long pressureEvents, long pressureRelieved, int openSequences,
                           List<SequenceMetrics> sequences) {
    /** Labels of the occupancy bins, in array order. */
    public static final List<String> OCCUPANCY_BINS =
            List.of("empty", "(0,25%)", "[25,50%)", "[50,75%)", "[75,100%)", "full");

    /** Copies the occupancy arrays and the sequence list, so the snapshot does not change afterwards. */
    public StoreMetrics {
        slabsByOccupancy = slabsByOccupancy.clone();
        blocksByOccupancy = blocksByOccupancy.clone();
        sequences = List.copyOf(sequences);
    }

    /**
     * Slabs per occupancy bin (see {@link #OCCUPANCY_BINS}).
     *
     * @return a copy of the array
     */
    @Override
    public int[] slabsByOccupancy() {
        return slabsByOccupancy.clone();
    }

    /**
     * Live blocks per occupancy bin of the slab they sit in.
     *
     * @return a copy of the array
     */
    @Override
    public long[] blocksByOccupancy() {
        return blocksByOccupancy.clone();
    }

    /**
     * Reserved over live bytes (1.0 = no overhead); {@code NaN} when nothing is live.
     *
     * @return {@code reservedBytes / liveBytes}, or {@code NaN}
     */
    public double overheadRatio() {
        return liveBytes == 0 ? Double.NaN : (double) reservedBytes / liveBytes;
    }

    /**
     * Prefix-cache hit rate over full token blocks looked up; {@code NaN} before the first lookup.
     *
     * @return hits over hits plus misses, in {@code [0, 1]}, or {@code NaN}
     */
    public double prefixHitRate() {
        long n = prefixHitBlocks + prefixMissBlocks;
        return n == 0 ? Double.NaN : (double) prefixHitBlocks / n;
    }

    /** One line per field group; arrays printed element by element (the record default prints identities). */
    @Override
    public String toString() {
        return "StoreMetrics[reserved=" + reservedBytes + " live=" + liveBytes + " peakReserved=" + peakReservedBytes
                + " peakLive=" + peakLiveBytes + " limit=" + (limitBytes == Long.MAX_VALUE ? "none" : limitBytes)
                + " blockBytes=" + blockBytes + " liveBlocks=" + liveBlocks + " slabs=" + slabs
                + " slabsByOccupancy=" + Arrays.toString(slabsByOccupancy)
                + " blocksByOccupancy=" + Arrays.toString(blocksByOccupancy)
                + " slabsAcquired=" + slabsAcquired + " slabsReleased=" + slabsReleased
                + " rowsEvicted=" + rowsEvicted + " rowsRemoved=" + rowsRemoved + " compactions=" + compactions
                + " blocksMoved=" + blocksMoved + " prefixHitBlocks=" + prefixHitBlocks + " prefixMissBlocks="
                + prefixMissBlocks + " prefixCachedBlocks=" + prefixCachedBlocks + " prefixEvictedBlocks="
                + prefixEvictedBlocks + " pressureEvents=" + pressureEvents + " pressureRelieved="
                + pressureRelieved + " openSequences=" + openSequences + " sequences=" + sequences + "]";
    }

    /**
     * The view of one sequence, or {@code null} when it is not open in this store.
     *
     * @param sequenceId a sequence id ({@link io.kvslab.Sequence#id()})
     * @return the sequence's view, or {@code null}
     */
    public SequenceMetrics sequence(long sequenceId) {
        for (SequenceMetrics m : sequences) {
            if (m.sequenceId() == sequenceId) {
                return m;
            }
        }
        return null;
    }
}
