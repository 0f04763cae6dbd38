package io.kvslab.internal.tier;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.internal.table.TableImage;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.SwappedSequence;

import java.util.List;

/**
 * The handle {@link Swap#swapOut} returns: tables naming records by index, and per record its key, CRC32C, kind,
 * first (layer, KV head) and positions (what {@link BlockRecords#expect} checks on the way back). The monitor
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
    final BlockRecord.Kind[] kinds;
    final int[] layers;
    final int[] kvHeads;
    final long[][] positions;
    private final long recordBytes;
    private boolean open = true;

    SwappedImage(long sequenceId, KvLayout layout, BlockTier tier, TableImage[][] tables, List<BlockKey> keys,
                 int[] crcs, BlockRecord.Kind[] kinds, int[] layers, int[] kvHeads, long[][] positions,
                 long recordBytes) {
        this.sequenceId = sequenceId;
        this.layout = layout;
        this.tier = tier;
        this.tables = tables;
        this.keys = List.copyOf(keys);
        this.crcs = crcs;
        this.kinds = kinds;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.positions = positions;
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
        return keys.size() * layout.blockBytes();
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
        for (BlockKey k : keys) {
            Swap.removeQuietly(tier, k);
        }
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
