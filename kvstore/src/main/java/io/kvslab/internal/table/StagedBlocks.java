package io.kvslab.internal.table;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.MemoryLimitExceededException;

import java.lang.foreign.MemorySegment;

/**
 * Blocks allocated for a restore, filled raw, then handed to sequences' tables in one step. Holds one reference
 * to each block; {@link #install} adds one per table slot naming a block; {@link #release()} drops the staging's
 * own. Handles never leave this package: callers name staged blocks by index.
 */
public final class StagedBlocks {
    private final TableStore store;
    private final SlabAllocator allocator;
    private final KvLayout layout;
    private final long[] handles;
    /** Whether staged block i holds K rows (else V rows): sets its size class and row bytes. */
    private final boolean[] keys;
    private final int[] rowsWritten;

    private StagedBlocks(TableStore store, KvLayout layout, long[] handles, boolean[] keys) {
        this.store = store;
        this.allocator = store.allocator;
        this.layout = layout;
        this.handles = handles;
        this.keys = keys;
        this.rowsWritten = new int[handles.length];
    }

    /**
     * Allocates {@code blocks} blocks, all or nothing (memory-pressure handlers may run). A count whose bytes
     * exceed the store's limit (computed in long) is refused before any array is sized.
     */
    public static StagedBlocks allocate(TableStore store, KvLayout layout, long limitBytes, int blocks) {
        if (!layout.uniformDtype() && layout.keyBlockBytes() != layout.valueBlockBytes()) {
            throw new KvArgumentException("K and V blocks of this store differ in size (K " + layout.keyDtype()
                    + ", V " + layout.valueDtype() + "): stage blocks naming the side of each");
        }
        if (blocks < 0) {
            throw new KvArgumentException("blocks must be >= 0, got " + blocks);
        }
        long bytes;
        try {
            bytes = Math.multiplyExact((long) blocks, layout.keyBlockBytes());
        } catch (ArithmeticException e) {
            bytes = Long.MAX_VALUE;
        }
        if (bytes > limitBytes) {   // refused before any array is sized
            store.enterShared();
            try {
                throw new MemoryLimitExceededException(bytes, limitBytes, store.allocator.liveBytes(),
                        store.allocator.reservedBytes());
            } finally {
                store.exitShared();
            }
        }
        boolean[] keys = new boolean[blocks];
        java.util.Arrays.fill(keys, true);
        return allocate(store, layout, limitBytes, keys);
    }

    /**
     * Allocates one block per entry of {@code keys}: a K block where it is true, a V block where false (all or
     * nothing; memory-pressure handlers may run). Bytes over the store's limit are refused before anything is sized.
     */
    public static StagedBlocks allocate(TableStore store, KvLayout layout, long limitBytes, boolean[] keys) {
        SlabAllocator allocator = store.allocator;
        if (keys == null) {
            throw new KvArgumentException("keys must not be null");
        }
        if (layout.keyBlockBytes() != allocator.blockBytes(SlabAllocator.KEY_CLASS)
                || layout.valueBlockBytes() != allocator.blockBytes(SlabAllocator.VALUE_CLASS)) {
            throw new KvArgumentException("the layout's block size differs from the store's");
        }
        int blocks = keys.length;
        int keyBlocks = 0;
        for (boolean k : keys) {
            keyBlocks += k ? 1 : 0;
        }
        long bytes;
        try {
            bytes = Math.addExact(Math.multiplyExact((long) keyBlocks, layout.keyBlockBytes()),
                    Math.multiplyExact((long) (blocks - keyBlocks), layout.valueBlockBytes()));
        } catch (ArithmeticException e) {
            bytes = Long.MAX_VALUE;
        }
        store.enterShared();
        try {
            if (bytes > limitBytes) {
                throw new MemoryLimitExceededException(bytes, limitBytes, allocator.liveBytes(),
                        allocator.reservedBytes());
            }
            long[] grouped = new long[blocks];
            for (int attempt = 1; ; attempt++) {
                try {
                    allocator.allocate(grouped, keyBlocks, blocks - keyBlocks);
                    break;
                } catch (MemoryLimitExceededException e) {
                    if (!store.host.relieve(-1, e, attempt)) {
                        throw e;
                    }
                }
            }
            long[] handles = new long[blocks];
            int k = 0;
            int v = keyBlocks;
            for (int i = 0; i < blocks; i++) {
                handles[i] = keys[i] ? grouped[k++] : grouped[v++];
            }
            return new StagedBlocks(store, layout, handles, keys.clone());
        } finally {
            store.exitShared();
        }
    }

    public int blocks() {
        return handles.length;
    }

    /** Rows written into staged block {@code index} so far. */
    public int rowsWritten(int index) {
        return rowsWritten[index];
    }

    /** Copies {@code rows} raw rows from {@code src[off ..]} into staged block {@code index}; zeroes the rest. */
    public void write(int index, byte[] src, int off, int rows) {
        if (index < 0 || index >= handles.length) {
            throw new KvArgumentException("block index must be in [0, " + handles.length + "), got " + index);
        }
        if (rows < 1 || rows > layout.tokensPerBlock()) {
            throw new KvArgumentException("rows must be in [1, " + layout.tokensPerBlock() + "], got " + rows);
        }
        long bytes = rows * layout.rowBytes(keys[index]);
        if (src == null || off < 0 || off + bytes > src.length) {
            throw new KvArgumentException("src must hold " + bytes + " bytes from offset " + off + ", got "
                    + (src == null ? "null" : src.length + " bytes"));
        }
        store.enterShared();
        try {
            MemorySegment seg = allocator.segment(handles[index]);
            MemorySegment.copy(MemorySegment.ofArray(src), off, seg, 0, bytes);
            seg.asSlice(bytes).fill((byte) 0);
            rowsWritten[index] = rows;
        } finally {
            store.exitShared();
        }
    }

    /**
     * Replaces every table of {@code target} by the (validated) image, referencing the staged blocks; the
     * target's previous blocks are released. Takes the target's write lock.
     */
    public void install(SequenceTables target, TableImage[][] image) {
        if (released) {
            throw new io.kvslab.ClosedException("block staging");
        }
        validate(target, image);
        target.underWriteLock(() -> {
            BlockTable[][] built = new BlockTable[image.length][];
            for (int l = 0; l < image.length; l++) {
                built[l] = new BlockTable[image[l].length];
                for (int h = 0; h < image[l].length; h++) {
                    TableImage t = image[l][h];
                    BlockTable bt = new BlockTable();
                    bt.ensureBlockCapacity(t.keyBlocks().length);
                    bt.ensureRowCapacity(t.rows());
                    System.arraycopy(t.positions(), 0, bt.positions, 0, t.rows());
                    bt.length = t.rows();
                    built[l][h] = bt;
                }
            }
            // Only now take references: nothing above can fail halfway with references taken.
            for (int l = 0; l < image.length; l++) {
                for (int h = 0; h < image[l].length; h++) {
                    TableImage t = image[l][h];
                    BlockTable bt = built[l][h];
                    for (int b = 0; b < t.keyBlocks().length; b++) {
                        bt.keyBlocks[b] = handles[t.keyBlocks()[b]];
                        bt.valueBlocks[b] = handles[t.valueBlocks()[b]];
                        allocator.addReference(bt.keyBlocks[b]);
                        allocator.addReference(bt.valueBlocks[b]);
                    }
                    bt.blockCount = t.keyBlocks().length;
                }
            }
            target.install(built);
            return null;
        });
    }

    private boolean released;

    /** Drops the staging's own references (once); blocks no table took are freed. */
    public void release() {
        if (released) {
            return;
        }
        released = true;
        store.enterShared();
        try {
            allocator.releaseAll(handles, 0, handles.length);
        } finally {
            store.exitShared();
        }
    }

    /** The image must fit the target's layout and name staged blocks holding enough rows (no trust in callers). */
    private void validate(SequenceTables target, TableImage[][] image) {
        if (target.allocator != allocator) {
            throw new KvArgumentException("the target sequence belongs to another store than the staging");
        }
        int tpb = layout.tokensPerBlock();
        if (image == null || image.length != layout.layers()) {
            throw new KvArgumentException("an image needs " + layout.layers() + " layers of tables");
        }
        for (TableImage[] layer : image) {
            if (layer == null || layer.length != layout.kvHeads()) {
                throw new KvArgumentException("an image layer needs " + layout.kvHeads() + " tables");
            }
            for (TableImage t : layer) {
                if (t == null || t.positions() == null || t.keyBlocks() == null || t.valueBlocks() == null) {
                    throw new KvArgumentException("tables, positions and block indices must not be null");
                }
                long[] p = t.positions();
                for (int r = 0; r < p.length; r++) {
                    if (p[r] < 0 || p[r] == Long.MAX_VALUE || (r > 0 && p[r] <= p[r - 1])) {
                        throw new KvArgumentException("positions must be in [0, Long.MAX_VALUE) and strictly "
                                + "increasing");
                    }
                }
                int blocks = (int) (((long) p.length + tpb - 1) / tpb);
                if (t.keyBlocks().length != blocks || t.valueBlocks().length != blocks) {
                    throw new KvArgumentException(p.length + " rows need " + blocks + " K and V blocks");
                }
                for (int b = 0; b < blocks; b++) {
                    int need = Math.min(tpb, p.length - b * tpb);
                    for (int side = 0; side < 2; side++) {
                        int index = side == 0 ? t.keyBlocks()[b] : t.valueBlocks()[b];
                        if (index < 0 || index >= handles.length || rowsWritten[index] < need) {
                            throw new KvArgumentException("block " + b + " names staged block " + index
                                    + ", which does not exist or holds fewer than " + need + " rows");
                        }
                        if (keys[index] != (side == 0) && layout.keyBlockBytes() != layout.valueBlockBytes()) {
                            throw new KvArgumentException("a " + (side == 0 ? "K" : "V") + " block names staged block "
                                    + index + ", which was staged for " + (keys[index] ? "K" : "V") + " rows");
                        }
                    }
                }
            }
        }
    }
}
