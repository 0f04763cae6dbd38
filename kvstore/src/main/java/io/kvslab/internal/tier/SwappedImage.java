package io.kvslab.internal.tier;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.internal.table.TableImage;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.SwappedSequence;

import java.util.List;

/**
 * The handle {@link Swap#swapOut} returns: tables naming distinct blocks by index, and per record its key, CRC32C,
 * header fields (what {@link BlockRecords#expect} checks on the way back) and the distinct blocks it fills. The monitor
 * guards the open flag; a swap-in holds it for the whole restore so that a concurrent close cannot remove records
 * under it.
 */
final class SwappedImage implements SwappedSequence {
    final long sequenceId;
    final KvLayout layout;
    final BlockTier tier;
    final TableImage[][] tables;
    final List<BlockKey> keys;
    final int[] crcs;
    /** Per record: its header fields and the staged blocks it fills. */
    final List<Swap.Planned> plan;
    /** Blocks a swap-in stages (distinct blocks of the image). */
    final int distinctBlocks;
    private final long recordBytes;
    private boolean open = true;

    SwappedImage(long sequenceId, KvLayout layout, BlockTier tier, TableImage[][] tables, int distinctBlocks,
                 List<BlockKey> keys, int[] crcs, List<Swap.Planned> plan, long recordBytes) {
        this.sequenceId = sequenceId;
        this.layout = layout;
        this.tier = tier;
        this.tables = tables;
        this.keys = List.copyOf(keys);
        this.crcs = crcs;
        this.plan = List.copyOf(plan);
        this.distinctBlocks = distinctBlocks;
        this.recordBytes = recordBytes;
    }

    @Override
    public long sequenceId() {
        return sequenceId;
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public BlockTier tier() {
        return tier;
    }

    @Override
    public List<BlockKey> keys() {
        return keys;
    }

    @Override
    public long recordBytes() {
        return recordBytes;
    }

    @Override
    public long blockBytes() {
        long bytes = 0;
        for (boolean k : keyBlocks()) {
            bytes += layout.blockBytes(k);
        }
        return bytes;
    }

    /** Per distinct (staged) block: whether it holds K rows (its size class on swap-in). */
    boolean[] keyBlocks() {
        boolean[] keys = new boolean[distinctBlocks];
        for (Swap.Planned p : plan) {
            for (int i = 0; i < p.staged().length; i++) {
                keys[p.staged()[i]] = p.isKeys(i);
            }
        }
        return keys;
    }

    @Override
    public int length(int layer, int kvHead) {
        return table(layer, kvHead).rows();
    }

    @Override
    public long[] positions(int layer, int kvHead) {
        return table(layer, kvHead).positions().clone();
    }

    private TableImage table(int layer, int kvHead) {
        if (layer < 0 || layer >= layout.layers() || kvHead < 0 || kvHead >= layout.kvHeads()) {
            throw new KvArgumentException("layer and kvHead must be in [0, " + layout.layers() + ") x [0, "
                    + layout.kvHeads() + "), got " + layer + ", " + kvHead);
        }
        return tables[layer][kvHead];
    }

    @Override
    public synchronized boolean isOpen() {
        return open;
    }

    /** Marks the handle used up (after a swap-in or close) and removes the records; caller holds the monitor. */
    void consume() {
        open = false;
        Swap.removeQuietly(tier, keys);
    }

    @Override
    public synchronized void close() {
        if (open) {
            consume();
        }
    }

    @Override
    public String toString() {
        return "SwappedSequence[sequence " + sequenceId + ", " + keys.size() + " records in " + tier.name()
                + (isOpen() ? "" : ", closed") + "]";
    }
}
