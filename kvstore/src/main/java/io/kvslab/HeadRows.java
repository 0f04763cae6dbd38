package io.kvslab;

import java.util.Arrays;

/**
 * Block table of one (layer, KV head) of one sequence: the K and V block handles, and the absolute position of
 * every row (cell metadata kept apart from tensor storage). Row r lives in block r / tokensPerBlock.
 * K and V have separate tables so that keys can later be shared across layers without values.
 */
final class HeadRows {
    int length;
    int blockCount;
    long[] keyBlocks;
    long[] valueBlocks;
    long[] positions;
    /** Addresses of the blocks, cached; valid while addressEpoch equals the store's relocation epoch. */
    long[] keyAddresses;
    long[] valueAddresses;
    long addressEpoch = -1;

    HeadRows() {
        keyBlocks = new long[4];
        valueBlocks = new long[4];
        positions = new long[16];
        keyAddresses = new long[4];
        valueAddresses = new long[4];
    }

    private HeadRows(HeadRows o) {
        length = o.length;
        blockCount = o.blockCount;
        keyBlocks = o.keyBlocks.clone();
        valueBlocks = o.valueBlocks.clone();
        positions = Arrays.copyOf(o.positions, Math.max(16, o.length));
        keyAddresses = o.keyAddresses.clone();
        valueAddresses = o.valueAddresses.clone();
        addressEpoch = o.addressEpoch;
    }

    HeadRows copy() {
        return new HeadRows(this);
    }

    long lastPosition() {
        return length == 0 ? -1 : positions[length - 1];
    }

    void ensureBlockCapacity(int blocks) {
        if (blocks > keyBlocks.length) {
            int n = Math.max(blocks, keyBlocks.length * 2);
            keyBlocks = Arrays.copyOf(keyBlocks, n);
            valueBlocks = Arrays.copyOf(valueBlocks, n);
            keyAddresses = Arrays.copyOf(keyAddresses, n);
            valueAddresses = Arrays.copyOf(valueAddresses, n);
        }
    }

    void ensureRowCapacity(int rows) {
        if (rows > positions.length) {
            positions = Arrays.copyOf(positions, Math.max(rows, positions.length * 2));
        }
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
            keyAddresses = Arrays.copyOf(keyAddresses, n);
            valueAddresses = Arrays.copyOf(valueAddresses, n);
        }
    }
}
