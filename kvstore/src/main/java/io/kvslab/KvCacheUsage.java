package io.kvslab;

/**
 * A scheduler's view of a store's KV memory at one moment ({@link KvCacheManager#usage()}), in blocks and bytes.
 * Every allocation is whole blocks, and a slab may be cut short at the limit, so a store with limit {@code L} holds
 * exactly {@code floor(L / blockBytes)} blocks: that is {@code capacityBlocks}.
 *
 * @param blockBytes      bytes of one block (K or V rows of one (layer, KV head))
 * @param capacityBlocks  blocks the limit allows ({@link Long#MAX_VALUE} / blockBytes when the store has no limit)
 * @param liveBlocks      blocks allocated now (sequences' and a prefix cache's)
 * @param pendingBlocks   blocks promised by {@link KvCacheManager#reserve} and not yet allocated
 * @param reservedBytes   native bytes the store holds in slabs (whole slabs; at most the limit)
 * @param limitBytes      the store's limit ({@link Long#MAX_VALUE} when none)
 */
public record KvCacheUsage(long blockBytes, long capacityBlocks, long liveBlocks, long pendingBlocks,
                           long reservedBytes, long limitBytes) {
    /**
     * Blocks a new reservation can still get: capacity minus live minus promised, at least 0.
     *
     * @return blocks, {@code >= 0}
     */
    public long headroomBlocks() {
        return Math.max(0, capacityBlocks - liveBlocks - pendingBlocks);
    }

    /**
     * {@link #headroomBlocks()} in bytes.
     *
     * @return bytes, {@code >= 0}
     */
    public long headroomBytes() {
        return Math.multiplyExact(headroomBlocks(), blockBytes);
    }

    /**
     * Bytes of the blocks allocated now.
     *
     * @return {@code liveBlocks * blockBytes}
     */
    public long liveBytes() {
        return Math.multiplyExact(liveBlocks, blockBytes);
    }

    /**
     * Bytes promised by reservations and not yet allocated.
     *
     * @return {@code pendingBlocks * blockBytes}
     */
    public long pendingBytes() {
        return Math.multiplyExact(pendingBlocks, blockBytes);
    }

    /**
     * (live + promised) / capacity, in [0, 1] (above 1 only if someone allocated past the reservations).
     *
     * @return the fraction of the capacity in use or promised
     */
    public double usage() {
        return capacityBlocks == 0 ? 1.0 : (double) (liveBlocks + pendingBlocks) / capacityBlocks;
    }
}
