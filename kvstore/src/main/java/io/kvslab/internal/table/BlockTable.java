package io.kvslab.internal.table;

import java.util.Arrays;

/**
 * Block table of one (layer, KV head) of one sequence: the K and V block handles, and the absolute position of
 * every row (cell metadata kept apart from tensor storage). Row r lives in block r / tokensPerBlock. K and V have
 * separate tables so that keys can be shared across layers without values.
 *
 * <p>Plain data, written only by {@link SequenceTables} (its one owner), under that sequence's write lock.
 */
final class BlockTable {
    int length;
    int blockCount;
    long[] keyBlocks;
    long[] valueBlocks;
    long[] positions;

    BlockTable() {
        keyBlocks = new long[4];
        valueBlocks = new long[4];
        positions = new long[16];
    }

    private BlockTable(BlockTable o) {
        length = o.length;
        blockCount = o.blockCount;
        keyBlocks = o.keyBlocks.clone();
        valueBlocks = o.valueBlocks.clone();
        positions = Arrays.copyOf(o.positions, Math.max(16, o.length));
    }

    BlockTable copy() {
        return new BlockTable(this);
    }

    long lastPosition() {
        return length == 0 ? -1 : positions[length - 1];
    }

    void ensureBlockCapacity(int blocks) {
        if (blocks > keyBlocks.length) {
            int n = Math.max(blocks, keyBlocks.length * 2);
            keyBlocks = Arrays.copyOf(keyBlocks, n);
            valueBlocks = Arrays.copyOf(valueBlocks, n);
        }
    }

    void ensureRowCapacity(int rows) {
        if (rows > positions.length) {
            positions = Arrays.copyOf(positions, Math.max(rows, positions.length * 2));
        }
    }

    /** First row index whose position is >= p (positions ascend). */
    int lowerBound(long p) {
        int lo = 0;
        int hi = length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (positions[mid] < p) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Drops capacity far beyond need after a large eviction, so heap metadata shrinks with the native data. */
    void trim() {
        if (positions.length > 64 && positions.length > 4L * length) {
            positions = Arrays.copyOf(positions, Math.max(16, length * 2));
        }
        if (keyBlocks.length > 16 && keyBlocks.length > 4L * blockCount) {
            int n = Math.max(4, blockCount * 2);
            keyBlocks = Arrays.copyOf(keyBlocks, n);
            valueBlocks = Arrays.copyOf(valueBlocks, n);
        }
    }
}
