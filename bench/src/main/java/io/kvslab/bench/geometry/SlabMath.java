package io.kvslab.bench.geometry;

import io.kvslab.KvLayout;
import io.kvslab.StoreConfig;

/**
 * The store's slab arithmetic, computed without allocating: blocks live in slabs of
 * {@code floor(slabBytes / blockBytes)} blocks, and the allocator cuts the last slab down to the room left under
 * the limit. Shared by the footprint model and the stress tests' memory bounds.
 */
public final class SlabMath {
    private SlabMath() {}

    /**
     * Bytes of {@code blocks} blocks counted over K and V together (as the store's live-block count does): half of
     * them K blocks and half V blocks, which differ in size when K and V types do.
     */
    public static long bytesOfBlocks(KvLayout layout, long blocks) {
        return layout.uniformDtype() ? Math.multiplyExact(blocks, layout.blockBytes())
                : Math.multiplyExact(blocks / 2, layout.blockPairBytes());
    }

    /** Blocks per slab, as the allocator computes it. */
    public static long blocksPerSlab(KvLayout layout, StoreConfig config) {
        return Math.max(1, config.slabBytes() / layout.blockBytes());
    }

    /**
     * Whether {@code blocks} blocks can be allocated under the config's limit. Like the allocator, the last slab
     * is cut down to the room left under the limit, so a limit smaller than one slab still holds a few blocks.
     */
    public static boolean fitsUnderLimit(KvLayout layout, StoreConfig config, long blocks) {
        long perSlab = blocksPerSlab(layout, config);
        long reserved = 0;
        long remaining = blocks;
        while (remaining > 0) {
            long room = (config.limitBytes() - reserved) / layout.blockBytes();
            long capacity = Math.min(perSlab, room);
            if (capacity <= 0) {
                return false;
            }
            reserved += capacity * layout.blockBytes();
            remaining -= capacity;
        }
        return true;
    }

    /**
     * Whole slabs needed for {@code blocks} blocks. When K and V blocks differ in size (K and V types differ), half
     * of them are K blocks in slabs of K blocks and half V blocks in slabs of V blocks (the allocator's two size
     * classes).
     */
    public static long reservedFor(KvLayout layout, StoreConfig config, long blocks) {
        if (layout.keyBlockBytes() != layout.valueBlockBytes()) {
            return classReserved(layout.keyBlockBytes(), config, blocks / 2)
                    + classReserved(layout.valueBlockBytes(), config, blocks - blocks / 2);
        }
        long perSlab = blocksPerSlab(layout, config);
        long slabs = (blocks + perSlab - 1) / perSlab;
        return slabs * perSlab * layout.blockBytes();
    }

    private static long classReserved(long blockBytes, StoreConfig config, long blocks) {
        long perSlab = Math.max(1, config.slabBytes() / blockBytes);
        return (blocks + perSlab - 1) / perSlab * perSlab * blockBytes;
    }
}
