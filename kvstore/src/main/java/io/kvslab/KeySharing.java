package io.kvslab;

import io.kvslab.internal.table.SlabAllocator;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Cross-layer key sharing inside one sequence (PoD, arXiv 2412.02252): a K block of (layer, KV head) is replaced by
 * an <em>alias</em> of the K block at the same index of a lower base layer's table for the same KV head. The alias
 * is a second reference to the base layer's block (reference counted); the layer's own copy is released, so its
 * bytes are really freed once no fork references it. Values are never shared.
 *
 * <p><b>State.</b> None beyond the block tables: block {@code b} of (layer, h) is an alias exactly when its handle
 * equals the handle at index {@code b} of a lower layer's table for {@code h}. Forks, compaction and snapshots keep
 * handles, hence aliases. Every operation that writes a block with more than one reference copies it first
 * (appends, {@code retain}, position shifts), so writing through one table never changes another; such an
 * operation turns an alias back into an own copy (correct, no longer saving memory).
 *
 * <p><b>Preconditions of an alias.</b> The base layer is below the layer; the block is full in both tables (the
 * partial tail of a table still receives appends, so it is never aliased); both tables hold the same positions in
 * that block. Violations throw {@link KeySharingException} and change nothing.
 *
 * <p><b>Accounting.</b> {@link Sequence#referencedBytes()} counts table references, so an aliased block counts once
 * per table naming it (as a block shared with a fork counts in both); the store's live bytes drop by one block per
 * own copy freed.
 */
final class KeySharing {
    private KeySharing() {}

    /** See {@link Sequence#aliasKeyBlock}. */
    static boolean alias(Sequence s, int layer, int kvHead, int block, int baseLayer) {
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            s.checkHead(layer, kvHead);
            s.checkHead(baseLayer, kvHead);
            checkBase(layer, baseLayer);
            HeadRows hr = s.heads[layer][kvHead];
            HeadRows base = s.heads[baseLayer][kvHead];
            checkAliasable(s, hr, base, layer, kvHead, block, baseLayer);
            return replace(s, hr, base, block);
        } finally {
            lock.unlock();
        }
    }

    /** See {@link Sequence#shareDistantKeys}. */
    static int demote(Sequence s, int layer, int kvHead, int baseLayer, int sinks, int recent, long queryPosition) {
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            s.checkHead(layer, kvHead);
            s.checkHead(baseLayer, kvHead);
            checkBase(layer, baseLayer);
            if (sinks < 0 || recent < 1) {
                throw new KeySharingException("sinks must be >= 0 and recent >= 1 (the query's own token is always "
                        + "proximal), got sinks " + sinks + " and recent " + recent);
            }
            if (queryPosition < 0) {
                throw new KeySharingException("queryPosition must be >= 0, got " + queryPosition);
            }
            HeadRows hr = s.heads[layer][kvHead];
            HeadRows base = s.heads[baseLayer][kvHead];
            int[] range = distantBlocks(s, hr, sinks, recent, queryPosition);
            // Validate every candidate first: all or nothing.
            for (int b = range[0]; b < range[1]; b++) {
                if (hr.keyBlocks[b] != blockAt(base, b)) {
                    checkAliasable(s, hr, base, layer, kvHead, b, baseLayer);
                }
            }
            int aliased = 0;
            for (int b = range[0]; b < range[1]; b++) {
                aliased += replace(s, hr, base, b) ? 1 : 0;
            }
            return aliased;
        } finally {
            lock.unlock();
        }
    }

    /** See {@link Sequence#keyBlockBaseLayer}. */
    static int baseLayer(Sequence s, int layer, int kvHead, int block) {
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            s.checkHead(layer, kvHead);
            HeadRows hr = s.heads[layer][kvHead];
            checkBlock(hr, layer, kvHead, block);
            long handle = hr.keyBlocks[block];
            for (int a = 0; a < layer; a++) {
                if (blockAt(s.heads[a][kvHead], block) == handle) {
                    return a;
                }
            }
            return layer;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Blocks {@code [from, to)} of a table all of whose rows are distant for a query at {@code t}: positions in
     * {@code [sinks, t - recent]}. Only full blocks count (the partial tail is never aliased).
     */
    static int[] distantBlocks(Sequence s, HeadRows hr, int sinks, int recent, long t) {
        int tpb = s.tokensPerBlock;
        long lastDistant = t - recent;   // recent >= 1 and t >= 0, so no overflow
        int firstRow = SequenceOps.lowerBound(hr, sinks);
        int endRow = SequenceOps.lowerBound(hr, lastDistant + 1);   // rows [firstRow, endRow) are distant
        if (lastDistant < sinks || endRow <= firstRow) {
            return new int[] {0, 0};
        }
        int from = (firstRow + tpb - 1) / tpb;
        int to = endRow / tpb;   // block b is wholly distant iff (b + 1) * tpb <= endRow; full blocks only
        return to > from ? new int[] {from, to} : new int[] {0, 0};
    }

    private static void checkBase(int layer, int baseLayer) {
        if (baseLayer >= layer) {
            throw new KeySharingException("the base layer must be below the layer whose keys it replaces: got "
                    + "base layer " + baseLayer + " for layer " + layer);
        }
    }

    private static void checkBlock(HeadRows hr, int layer, int kvHead, int block) {
        if (block < 0 || block >= hr.blockCount) {
            throw new KeySharingException("block must be in [0, " + hr.blockCount + ") for layer " + layer
                    + ", KV head " + kvHead + ", got " + block);
        }
    }

    private static void checkAliasable(Sequence s, HeadRows hr, HeadRows base, int layer, int kvHead, int block,
                                       int baseLayer) {
        checkBlock(hr, layer, kvHead, block);
        int tpb = s.tokensPerBlock;
        int end = (block + 1) * tpb;
        if (hr.length < end) {
            throw new KeySharingException("block " + block + " of layer " + layer + ", KV head " + kvHead + " holds "
                    + (hr.length - block * tpb) + " of " + tpb + " rows; only full blocks can share keys (the "
                    + "partial tail still receives appends)");
        }
        if (base.length < end) {
            throw new KeySharingException("base layer " + baseLayer + ", KV head " + kvHead + " holds "
                    + Math.max(0, base.length - block * tpb) + " of " + tpb + " rows in block " + block
                    + "; its block must be full to be shared with layer " + layer);
        }
        for (int r = block * tpb; r < end; r++) {
            if (hr.positions[r] != base.positions[r]) {
                throw new KeySharingException("layer " + layer + " and base layer " + baseLayer + " hold different "
                        + "positions in block " + block + " of KV head " + kvHead + " (row " + r + ": "
                        + hr.positions[r] + " vs " + base.positions[r] + "); keys can only be shared between "
                        + "tables holding the same positions (apply the same eviction to every layer of a group)");
            }
        }
    }

    private static long blockAt(HeadRows hr, int block) {
        return block < hr.blockCount ? hr.keyBlocks[block] : 0;
    }

    /** Points hr's block at base's (retain first, then release the own copy). False if it already does. */
    private static boolean replace(Sequence s, HeadRows hr, HeadRows base, int block) {
        long shared = base.keyBlocks[block];
        long own = hr.keyBlocks[block];
        if (own == shared) {
            return false;
        }
        SlabAllocator allocator = s.allocator;
        allocator.retain(shared);
        allocator.release(own);
        hr.keyBlocks[block] = shared;
        hr.addressEpoch = -1;
        s.modCount++;
        return true;
    }
}
