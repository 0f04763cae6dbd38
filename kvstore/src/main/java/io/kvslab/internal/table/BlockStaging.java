package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.util.ArrayList;
import java.util.List;

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
    private final TableStore tables;
    private final StagedBlocks staged;
    private boolean committed;
    private boolean closed;

    BlockStaging(KvStore store, StagedBlocks staged) {
        this.store = store;
        this.tables = TableAccess.of(store);
        this.staged = staged;
    }

    /** Staged blocks. */
    public int blocks() {
        return staged.blocks();
    }

    /**
     * Copies {@code rows} raw rows (stored dtype) from {@code src[off ..]} into staged block {@code index} and
     * zeroes the rest of the block.
     */
    public void write(int index, byte[] src, int off, int rows) {
        checkUsable();
        staged.write(index, src, off, rows);
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
        tables.enterShared();
        try {
            for (int i = 0; i < images.size(); i++) {
                validate(images.get(i), "sequence image " + i);
            }
            List<Sequence> created = new ArrayList<>(images.size());
            try {
                for (TableImage[][] image : images) {
                    Sequence s = store.newSequence();
                    created.add(s);
                    staged.install(TableAccess.of(s), image);
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
            tables.exitShared();
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
        if (target.store() != store) {
            throw new KvArgumentException("sequence " + target.id() + " belongs to another store than the staging");
        }
        tables.enterShared();
        try {
            if (target.isClosed()) {
                throw new ClosedException("sequence " + target.id());
            }
            validate(image, "sequence image");
            staged.install(TableAccess.of(target), image);
            committed = true;
        } finally {
            tables.exitShared();
        }
    }

    /** Drops the staging's own block references; blocks no sequence took are freed. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            tables.enterShared();
        } catch (ClosedException e) {
            return;   // the store freed everything already
        }
        try {
            staged.release();
        } finally {
            tables.exitShared();
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
        if (index < 0 || index >= staged.blocks()) {
            throw new KvArgumentException(where + ": block " + b + " names staged block " + index
                    + ", allowed are [0, " + staged.blocks() + ")");
        }
        if (staged.rowsWritten(index) < rowsNeeded) {
            throw new KvArgumentException(where + ": block " + b + " needs " + rowsNeeded + " rows, staged block "
                    + index + " holds " + staged.rowsWritten(index));
        }
    }
}
