package io.kvslab;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Blocks allocated for a restore ({@link RawBlocks#stage}), filled raw, then handed to sequences in one step.
 *
 * <p>The staging holds one reference to each block. {@link #commit} and {@link #commitInto} validate every table
 * image before they touch a sequence and add one reference per table slot naming a block (so a block named by
 * two slots is shared, exactly like a fork). {@link #close} drops the staging's own references: blocks that no
 * sequence took are freed. A failed or abandoned restore therefore leaves the store as it was.
 *
 * <p>Not thread-safe: one thread fills and commits a staging.
 */
public final class BlockStaging implements AutoCloseable {
    private final KvStore store;
    private final long[] handles;
    private final int[] rowsWritten;
    private boolean committed;
    private boolean closed;

    BlockStaging(KvStore store, long[] handles) {
        this.store = store;
        this.handles = handles;
        this.rowsWritten = new int[handles.length];
    }

    /** Staged blocks. */
    public int blocks() {
        return handles.length;
    }

    /**
     * Copies {@code rows} raw rows (stored dtype) from {@code src[off ..]} into staged block {@code index} and
     * zeroes the rest of the block.
     */
    public void write(int index, byte[] src, int off, int rows) {
        checkUsable();
        KvLayout layout = store.layout();
        if (index < 0 || index >= handles.length) {
            throw new KvArgumentException("block index must be in [0, " + handles.length + "), got " + index);
        }
        if (rows < 1 || rows > layout.tokensPerBlock()) {
            throw new KvArgumentException("rows must be in [1, " + layout.tokensPerBlock() + "], got " + rows);
        }
        long bytes = rows * layout.rowBytes();
        if (src == null || off < 0 || off + bytes > src.length) {
            throw new KvArgumentException("src must hold " + bytes + " bytes from offset " + off + ", got "
                    + (src == null ? "null" : src.length + " bytes"));
        }
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            MemorySegment seg = store.allocator.segment(handles[index]);
            MemorySegment.copy(MemorySegment.ofArray(src), off, seg, 0, bytes);
            seg.asSlice(bytes).fill((byte) 0);
            rowsWritten[index] = rows;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Creates one new sequence per image ({@code [layer][kvHead]} tables), in order. Every image is validated
     * first; if one is invalid, no sequence is created.
     */
    public List<Sequence> commit(List<TableImage[][]> images) {
        checkUsable();
        if (images == null) {
            throw new KvArgumentException("images must not be null");
        }
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            for (int i = 0; i < images.size(); i++) {
                validate(images.get(i), "sequence image " + i);
            }
            List<Sequence> created = new ArrayList<>(images.size());
            try {
                for (TableImage[][] image : images) {
                    Sequence s = store.newSequence();
                    created.add(s);
                    HeadRows[][] tables = build(image);
                    install(s, tables);
                }
            } catch (RuntimeException e) {
                for (Sequence s : created) {
                    s.close();
                }
                throw e;
            }
            committed = true;
            return created;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Replaces the whole contents of {@code target} (an open sequence of this store) with one image; its
     * previous blocks are released. If the image is invalid, {@code target} is left unchanged.
     */
    public void commitInto(Sequence target, TableImage[][] image) {
        checkUsable();
        if (target == null) {
            throw new KvArgumentException("target must not be null");
        }
        if (target.store != store) {
            throw new KvArgumentException("sequence " + target.id() + " belongs to another store than the staging");
        }
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            target.checkOpen();
            validate(image, "sequence image");
            HeadRows[][] tables = build(image);
            for (HeadRows[] layer : target.heads) {
                for (HeadRows hr : layer) {
                    store.allocator.releaseAll(hr.keyBlocks, 0, hr.blockCount);
                    store.allocator.releaseAll(hr.valueBlocks, 0, hr.blockCount);
                    hr.blockCount = 0;
                    hr.length = 0;
                }
            }
            target.referencedBlocks = 0;
            install(target, tables);
            committed = true;
        } finally {
            lock.unlock();
        }
    }

    /** Drops the staging's own block references; blocks no sequence took are freed. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        ReentrantReadWriteLock.ReadLock lock;
        try {
            lock = store.enter();
        } catch (ClosedException e) {
            return;   // the store freed everything already
        }
        try {
            store.allocator.releaseAll(handles, 0, handles.length);
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- internals

    private void checkUsable() {
        if (closed) {
            throw new ClosedException("block staging");
        }
        if (committed) {
            throw new KvSlabException("block staging was already committed; stage new blocks for another restore");
        }
    }

    private void validate(TableImage[][] image, String what) {
        KvLayout layout = store.layout();
        int tpb = layout.tokensPerBlock();
        if (image == null || image.length != layout.layers()) {
            throw new KvArgumentException(what + " must have " + layout.layers() + " layers of tables, got "
                    + (image == null ? "null" : image.length));
        }
        for (int l = 0; l < image.length; l++) {
            if (image[l] == null || image[l].length != layout.kvHeads()) {
                throw new KvArgumentException(what + ", layer " + l + " must have " + layout.kvHeads()
                        + " KV head tables, got " + (image[l] == null ? "null" : image[l].length));
            }
            for (int h = 0; h < image[l].length; h++) {
                String where = what + ", layer " + l + ", KV head " + h;
                TableImage t = image[l][h];
                if (t == null || t.positions() == null || t.keyBlocks() == null || t.valueBlocks() == null) {
                    throw new KvArgumentException(where + ": table, positions and block indices must not be null");
                }
                long[] p = t.positions();
                for (int r = 0; r < p.length; r++) {
                    if (p[r] < 0 || (r > 0 && p[r] <= p[r - 1])) {
                        throw new KvArgumentException(where + ": positions must be >= 0 and strictly increasing; "
                                + "positions[" + r + "] = " + p[r]);
                    }
                }
                int blocks = (p.length + tpb - 1) / tpb;
                if (t.keyBlocks().length != blocks || t.valueBlocks().length != blocks) {
                    throw new KvArgumentException(where + ": " + p.length + " rows need " + blocks + " K and V "
                            + "blocks, got " + t.keyBlocks().length + " and " + t.valueBlocks().length);
                }
                for (int b = 0; b < blocks; b++) {
                    int need = Math.min(tpb, p.length - b * tpb);
                    checkBlock(where, t.keyBlocks()[b], need, b);
                    checkBlock(where, t.valueBlocks()[b], need, b);
                }
            }
        }
    }

    private void checkBlock(String where, int index, int rowsNeeded, int b) {
        if (index < 0 || index >= handles.length) {
            throw new KvArgumentException(where + ": block " + b + " names staged block " + index
                    + ", allowed are [0, " + handles.length + ")");
        }
        if (rowsWritten[index] < rowsNeeded) {
            throw new KvArgumentException(where + ": block " + b + " needs " + rowsNeeded + " rows, staged block "
                    + index + " holds " + rowsWritten[index]);
        }
    }

    /** New tables referencing the staged blocks (one reference per slot is added here). */
    private HeadRows[][] build(TableImage[][] image) {
        HeadRows[][] tables = new HeadRows[image.length][];
        for (int l = 0; l < image.length; l++) {
            tables[l] = new HeadRows[image[l].length];
            for (int h = 0; h < image[l].length; h++) {
                TableImage t = image[l][h];
                HeadRows hr = new HeadRows();
                int blocks = t.keyBlocks().length;
                hr.ensureBlockCapacity(blocks);
                hr.ensureRowCapacity(t.rows());
                System.arraycopy(t.positions(), 0, hr.positions, 0, t.rows());
                hr.length = t.rows();
                tables[l][h] = hr;
            }
        }
        // Only now take references: nothing above can fail halfway with references taken.
        for (int l = 0; l < image.length; l++) {
            for (int h = 0; h < image[l].length; h++) {
                TableImage t = image[l][h];
                HeadRows hr = tables[l][h];
                for (int b = 0; b < t.keyBlocks().length; b++) {
                    hr.keyBlocks[b] = handles[t.keyBlocks()[b]];
                    hr.valueBlocks[b] = handles[t.valueBlocks()[b]];
                    store.allocator.retain(hr.keyBlocks[b]);
                    store.allocator.retain(hr.valueBlocks[b]);
                }
                hr.blockCount = t.keyBlocks().length;
            }
        }
        return tables;
    }

    private static void install(Sequence s, HeadRows[][] tables) {
        long blocks = 0;
        for (int l = 0; l < tables.length; l++) {
            for (int h = 0; h < tables[l].length; h++) {
                s.heads[l][h] = tables[l][h];
                blocks += 2L * tables[l][h].blockCount;
            }
        }
        s.referencedBlocks = blocks;
        s.peakReferencedBlocks = Math.max(s.peakReferencedBlocks, blocks);
        s.modCount++;
    }
}
