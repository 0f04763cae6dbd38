package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.LayerView;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * {@link LayerView} over a sequence's tables: holds the sequence's read lock from open to close, and hands out
 * block segments re-scoped to a confined arena of its own (one per view, never per block), so they die with it.
 */
public final class TableView implements LayerView {
    private final SequenceTables tables;
    private final int layer;
    private final Thread owner;
    private final Arena scope;
    private boolean closed;

    private TableView(SequenceTables tables, int layer) {
        this.tables = tables;
        this.layer = layer;
        this.owner = Thread.currentThread();
        this.scope = Arena.ofConfined();
    }

    /** Opens a view of {@code layer}, taking the sequence's read lock (released by {@link #close()}). */
    public static LayerView open(SequenceTables tables, int layer) {
        tables.checkHead(layer, 0);
        tables.beginRead();
        try {
            return new TableView(tables, layer);
        } catch (RuntimeException | Error e) {
            tables.endRead();
            throw e;
        }
    }

    @Override
    public int layer() {
        return layer;
    }

    @Override
    public KvLayout layout() {
        return tables.layout;
    }

    @Override
    public int length(int kvHead) {
        return table(kvHead).length;
    }

    @Override
    public long[] positions(int kvHead) {
        BlockTable t = table(kvHead);
        return Arrays.copyOf(t.positions, t.length);
    }

    @Override
    public int blockCount(int kvHead) {
        return table(kvHead).blockCount;
    }

    @Override
    public MemorySegment keyBlock(int kvHead, int block) {
        BlockTable t = table(kvHead);
        return scoped(t.keyBlocks, t.blockCount, block);
    }

    @Override
    public MemorySegment valueBlock(int kvHead, int block) {
        BlockTable t = table(kvHead);
        return scoped(t.valueBlocks, t.blockCount, block);
    }

    @Override
    public void readKeys(int kvHead, int from, int count, float[] dst, int offset) {
        readRows(kvHead, from, count, dst, offset, true);
    }

    @Override
    public void readValues(int kvHead, int from, int count, float[] dst, int offset) {
        readRows(kvHead, from, count, dst, offset, false);
    }

    private void readRows(int kvHead, int from, int count, float[] dst, int offset, boolean keys) {
        BlockTable t = table(kvHead);
        KvLayout layout = tables.layout;
        int dim = layout.headDim();
        if (from < 0 || count < 0 || from > t.length - count) {
            throw new KvArgumentException("rows [" + from + ", " + from + " + " + count + ") must lie in [0, "
                    + t.length + ")");
        }
        if (dst == null || offset < 0 || (long) count * dim > dst.length - (long) offset) {
            throw new KvArgumentException("dst must hold " + ((long) count * dim) + " floats from offset " + offset
                    + ", got " + (dst == null ? "null" : dst.length + " floats"));
        }
        int tpb = layout.tokensPerBlock();
        long[] blocks = keys ? t.keyBlocks : t.valueBlocks;
        for (int r = from; r < from + count; ) {
            int inBlock = Math.min(tpb - r % tpb, from + count - r);
            MemorySegment seg = tables.allocator.segment(blocks[r / tpb]);
            RowCodec.readRows(seg, (r % tpb) * layout.rowBytes(keys), dst, offset + (r - from) * dim, inBlock, dim,
                    layout.dtype(keys));
            r += inBlock;
        }
    }

    private MemorySegment scoped(long[] handles, int count, int block) {
        if (block < 0 || block >= count) {
            throw new KvArgumentException("block must be in [0, " + count + "), got " + block);
        }
        MemorySegment raw = tables.allocator.segment(handles[block]);
        return SlabMemory.readOnlyIn(raw, scope);
    }

    private BlockTable table(int kvHead) {
        checkUsable();
        tables.checkHead(layer, kvHead);
        return tables.tables[layer][kvHead];
    }

    private void checkUsable() {
        if (Thread.currentThread() != owner) {
            throw new ConcurrentUseException("a LayerView is confined to the thread that opened it");
        }
        if (closed) {
            throw new ClosedException("this LayerView");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (Thread.currentThread() != owner) {
            throw new ConcurrentUseException("a LayerView must be closed by the thread that opened it");
        }
        closed = true;
        scope.close();
        tables.endRead();
    }
}
