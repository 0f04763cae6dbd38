package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A consistent raw image of one sequence's tables, taken for a swap-out ({@link SequenceTables#swapOut}): per
 * (layer, KV head) a {@link TableImage} whose block indices name the image's distinct blocks, and for each
 * distinct block its kind, first user, row count and row positions. Slots naming the same physical block with the
 * same rows (PoD key aliases) name one distinct block, so a restore through {@link BlockStaging} shares it again.
 *
 * <p>{@link #read} copies a block's stored rows; it works only while the swap-out holds the sequence's write lock
 * (inside the {@code save} callback). Handles never leave this class.
 */
public final class SwapImage {
    private final SequenceTables owner;
    private final TableImage[][] tables;
    private final long[] handles;
    private final boolean[] keys;
    private final int[] layers;
    private final int[] kvHeads;
    private final long[][] positions;
    private final int[] blockIndexes;
    private volatile boolean readable = true;

    private SwapImage(SequenceTables owner, TableImage[][] tables, List<Distinct> blocks) {
        this.owner = owner;
        this.tables = tables;
        int n = blocks.size();
        this.handles = new long[n];
        this.keys = new boolean[n];
        this.layers = new int[n];
        this.kvHeads = new int[n];
        this.positions = new long[n][];
        this.blockIndexes = new int[n];
        for (int i = 0; i < n; i++) {
            Distinct d = blocks.get(i);
            handles[i] = d.handle;
            keys[i] = d.keys;
            layers[i] = d.layer;
            kvHeads[i] = d.kvHead;
            positions[i] = d.positions;
            blockIndexes[i] = d.blockIndex;
        }
    }

    private record Distinct(long handle, boolean keys, int layer, int kvHead, int blockIndex, long[] positions) {}

    /** Captures {@code owner}'s tables; its write lock is held. */
    static SwapImage capture(SequenceTables owner) {
        int tpb = owner.tokensPerBlock;
        BlockTable[][] src = owner.tables;
        TableImage[][] images = new TableImage[src.length][];
        List<Distinct> blocks = new ArrayList<>();
        Map<Long, List<Integer>> byHandle = new HashMap<>();
        for (int l = 0; l < src.length; l++) {
            images[l] = new TableImage[src[l].length];
            for (int h = 0; h < src[l].length; h++) {
                BlockTable t = src[l][h];
                int[] k = new int[t.blockCount];
                int[] v = new int[t.blockCount];
                for (int b = 0; b < t.blockCount; b++) {
                    long[] p = Arrays.copyOfRange(t.positions, b * tpb, Math.min(t.length, (b + 1) * tpb));
                    k[b] = distinct(blocks, byHandle, new Distinct(t.keyBlocks[b], true, l, h, b, p));
                    v[b] = distinct(blocks, byHandle, new Distinct(t.valueBlocks[b], false, l, h, b, p));
                }
                images[l][h] = new TableImage(Arrays.copyOf(t.positions, t.length), k, v);
            }
        }
        return new SwapImage(owner, images, blocks);
    }

    /** Index of the distinct block equal to {@code d} (same block, kind and rows), adding it if new. */
    private static int distinct(List<Distinct> blocks, Map<Long, List<Integer>> byHandle, Distinct d) {
        List<Integer> same = byHandle.computeIfAbsent(d.handle, x -> new ArrayList<>(1));
        for (int i : same) {
            Distinct o = blocks.get(i);
            if (o.keys == d.keys && Arrays.equals(o.positions, d.positions)) {
                return i;
            }
        }
        blocks.add(d);
        same.add(blocks.size() - 1);
        return blocks.size() - 1;
    }

    public KvLayout layout() {
        return owner.layout;
    }

    /** Tables {@code [layer][kvHead]} naming distinct blocks by index. The arrays are the image's: do not change. */
    public TableImage[][] tables() {
        return tables;
    }

    /** Distinct blocks. */
    public int blocks() {
        return handles.length;
    }

    /** Whether distinct block {@code b} holds K rows (else V rows). */
    public boolean isKeys(int b) {
        return keys[b];
    }

    /** The first (layer, KV head) naming block {@code b}. */
    public int layer(int b) {
        return layers[b];
    }

    public int kvHead(int b) {
        return kvHeads[b];
    }

    /** The index of block {@code b} in the table of its first user. */
    public int blockIndex(int b) {
        return blockIndexes[b];
    }

    /** Positions of the rows stored in block {@code b} (its row count is their number). A copy. */
    public long[] positions(int b) {
        return positions[b].clone();
    }

    /** Copies block {@code b}'s stored rows into {@code dst[0, rows * rowBytes)}. Only inside the swap-out. */
    public void read(int b, byte[] dst) {
        if (!readable) {
            throw new ClosedException("swap image (its sequence's lock was released)");
        }
        if (b < 0 || b >= handles.length) {
            throw new KvArgumentException("block must be in [0, " + handles.length + "), got " + b);
        }
        long bytes = positions[b].length * (keys[b] ? owner.keyRowBytes : owner.valueRowBytes);
        if (dst == null || dst.length < bytes) {
            throw new KvArgumentException("dst must hold " + bytes + " bytes");
        }
        MemorySegment.copy(owner.allocator.segment(handles[b]), 0, MemorySegment.ofArray(dst), 0, bytes);
    }

    void expire() {
        readable = false;
    }
}
