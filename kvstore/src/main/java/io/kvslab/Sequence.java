package io.kvslab;

import io.kvslab.KvArgumentException;
import io.kvslab.internal.table.SlabAllocator;
import io.kvslab.metrics.SequenceMetrics;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The KV cache of one sequence: for every (layer, KV head) a block table of K rows, V rows and their absolute
 * positions. Lengths may differ per (layer, KV head) after head-wise eviction.
 *
 * <p>Every mutating operation validates all arguments and reserves every block it needs before it writes anything,
 * so a failure (bad argument, memory limit) leaves the sequence and the store unchanged.
 *
 * <p>One writer at a time (see {@link KvStore} for the full concurrency contract).
 */
public final class Sequence implements AutoCloseable {
    // Package-private: SequenceOps, PrefixCache and BlockStaging work on the block tables directly.
    final KvStore store;
    final SlabAllocator allocator;
    private final long id;
    final KvLayout layout;
    final int tokensPerBlock;
    final long rowBytes;
    final HeadRows[][] heads;
    long referencedBlocks;
    long peakReferencedBlocks;
    /** Rows dropped by retain (compression) over this sequence's life. */
    long rowsEvicted;
    /** Bumped by every mutation; lets the store detect a pressure handler that mutated the allocating sequence. */
    int modCount;
    private volatile boolean closed;

    Sequence(KvStore store, long id) {
        this.store = store;
        this.allocator = store.allocator;
        this.id = id;
        this.layout = store.layout();
        this.tokensPerBlock = layout.tokensPerBlock();
        this.rowBytes = layout.rowBytes();
        this.heads = new HeadRows[layout.layers()][layout.kvHeads()];
        for (HeadRows[] layer : heads) {
            for (int h = 0; h < layer.length; h++) {
                layer[h] = new HeadRows();
            }
        }
    }

    private Sequence(Sequence parent, long id) {
        this.store = parent.store;
        this.allocator = parent.allocator;
        this.id = id;
        this.layout = parent.layout;
        this.tokensPerBlock = parent.tokensPerBlock;
        this.rowBytes = parent.rowBytes;
        this.heads = new HeadRows[layout.layers()][layout.kvHeads()];
        for (int l = 0; l < heads.length; l++) {
            for (int h = 0; h < heads[l].length; h++) {
                heads[l][h] = parent.heads[l][h].copy();
            }
        }
        this.referencedBlocks = parent.referencedBlocks;
        this.peakReferencedBlocks = parent.referencedBlocks;
    }

    public long id() {
        return id;
    }

    public KvStore store() {
        return store;
    }

    public KvLayout layout() {
        return layout;
    }

    public boolean isClosed() {
        return closed;
    }

    // ---------------------------------------------------------------- writes

    /**
     * Appends one token's K and V rows to every KV head of {@code layer}.
     *
     * @param k        RoPE-rotated keys, {@code float[kvHeads * headDim]} (KV head major)
     * @param v        values, same shape
     * @param position absolute position; greater than every position already stored in this layer
     */
    public void append(int layer, float[] k, float[] v, long position) {
        appendRows(layer, k, v, 1, null, position);
    }

    /**
     * Appends {@code positions.length} tokens (a prefill chunk) to every KV head of {@code layer}.
     *
     * @param k         {@code float[n * kvHeads * headDim]}, laid out [token][kvHead][dim]
     * @param v         same shape
     * @param positions strictly increasing absolute positions, above every position stored in this layer
     */
    public void appendChunk(int layer, float[] k, float[] v, long[] positions) {
        if (positions == null) {
            throw new KvArgumentException("positions must not be null");
        }
        appendRows(layer, k, v, positions.length, positions, 0);
    }

    private void appendRows(int layer, float[] k, float[] v, int n, long[] positions, long single) {
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            checkOpen();
            checkLayer(layer);
            if (k == null || v == null) {
                throw new KvArgumentException("k and v must not be null");
            }
            if (n <= 0) {
                throw new KvArgumentException("a chunk needs at least one token, got " + n);
            }
            int width = layout.kvHeads() * layout.headDim();
            long expected = (long) n * width;
            if (k.length != expected || v.length != expected) {
                throw new KvArgumentException("k and v must have " + n + " tokens x " + layout.kvHeads()
                        + " KV heads x " + layout.headDim() + " = " + expected + " floats, got " + k.length
                        + " and " + v.length);
            }
            HeadRows[] rows = heads[layer];
            long last = -1;
            for (HeadRows hr : rows) {
                last = Math.max(last, hr.lastPosition());
            }
            for (int i = 0; i < n; i++) {
                long p = positions == null ? single : positions[i];
                if (p <= last) {
                    throw new KvArgumentException("position " + p + " (token " + i + " of the chunk) must be >= 0 and "
                            + "greater than " + last + ", the previous position in layer " + layer);
                }
                last = p;
            }
            RowCodec.checkValues("k", k, 0, k.length, layout.dtype());
            RowCodec.checkValues("v", v, 0, v.length, layout.dtype());

            // Reserve every block first: new tail blocks, and private copies of shared partial tails.
            // Counted again after a memory-pressure handler ran: it may have changed what is shared.
            int newBlocks;
            long[] fresh;
            for (int attempt = 1; ; attempt++) {
                newBlocks = 0;
                int copies = 0;
                for (HeadRows hr : rows) {
                    newBlocks += 2 * (blocksFor(hr.length + n) - hr.blockCount);
                    if (hr.length % tokensPerBlock != 0) {
                        copies += allocator.refCount(hr.keyBlocks[hr.blockCount - 1]) > 1 ? 1 : 0;
                        copies += allocator.refCount(hr.valueBlocks[hr.blockCount - 1]) > 1 ? 1 : 0;
                    }
                }
                fresh = new long[newBlocks + copies];
                if (store.tryAllocate(this, fresh, attempt)) {
                    break;
                }
            }

            int f = 0;
            for (int h = 0; h < rows.length; h++) {
                HeadRows hr = rows[h];
                int tailRows = hr.length % tokensPerBlock;
                if (tailRows != 0) {
                    int tail = hr.blockCount - 1;
                    if (allocator.refCount(hr.keyBlocks[tail]) > 1) {
                        hr.keyBlocks[tail] = copyOnWrite(hr.keyBlocks[tail], fresh[f++], tailRows);
                    }
                    if (allocator.refCount(hr.valueBlocks[tail]) > 1) {
                        hr.valueBlocks[tail] = copyOnWrite(hr.valueBlocks[tail], fresh[f++], tailRows);
                    }
                }
                int target = blocksFor(hr.length + n);
                hr.ensureBlockCapacity(target);
                while (hr.blockCount < target) {
                    hr.keyBlocks[hr.blockCount] = fresh[f++];
                    hr.valueBlocks[hr.blockCount] = fresh[f++];
                    hr.blockCount++;
                }
                hr.ensureRowCapacity(hr.length + n);
                writeRows(hr, h, k, v, n, width);
                for (int i = 0; i < n; i++) {
                    hr.positions[hr.length + i] = positions == null ? single : positions[i];
                }
                hr.length += n;
                hr.addressEpoch = -1;
            }
            // A fork sibling may have dropped its reference since we counted: return unused copy blocks.
            if (f < fresh.length) {
                allocator.releaseAll(fresh, f, fresh.length);
            }
            referencedBlocks += newBlocks;
            peakReferencedBlocks = Math.max(peakReferencedBlocks, referencedBlocks);
            modCount++;
        } finally {
            lock.unlock();
        }
    }

    private void writeRows(HeadRows hr, int h, float[] k, float[] v, int n, int width) {
        int dim = layout.headDim();
        int i = 0;
        while (i < n) {
            int row = hr.length + i;
            int block = row / tokensPerBlock;
            int inBlock = Math.min(n - i, tokensPerBlock - row % tokensPerBlock);
            MemorySegment kSeg = allocator.segment(hr.keyBlocks[block]);
            MemorySegment vSeg = allocator.segment(hr.valueBlocks[block]);
            for (int j = 0; j < inBlock; j++) {
                long off = (long) ((row + j) % tokensPerBlock) * rowBytes;
                int src = (i + j) * width + h * dim;
                RowCodec.write(k, src, kSeg, off, dim, layout.dtype());
                RowCodec.write(v, src, vSeg, off, dim, layout.dtype());
            }
            i += inBlock;
        }
    }

    private long copyOnWrite(long shared, long fresh, int rows) {
        MemorySegment.copy(allocator.segment(shared), 0, allocator.segment(fresh), 0, rows * rowBytes);
        allocator.release(shared);
        return fresh;
    }

    /**
     * Keeps only the given rows of one (layer, KV head), in order, and frees the rest: retained rows are moved to
     * the front (bitwise unchanged, with their positions), emptied blocks are freed. Shared blocks are never
     * modified: a table that shares any block with another sequence is rebuilt into fresh blocks.
     *
     * @param rows strictly increasing row indices in {@code [0, length(layer, kvHead))}; empty frees every row
     */
    public void retain(int layer, int kvHead, int[] rows) {
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            checkOpen();
            checkHead(layer, kvHead);
            HeadRows hr = heads[layer][kvHead];
            if (rows == null) {
                throw new KvArgumentException("rows must not be null");
            }
            int m = rows.length;
            for (int j = 0; j < m; j++) {
                if (rows[j] < 0 || rows[j] >= hr.length || (j > 0 && rows[j] <= rows[j - 1])) {
                    throw new KvArgumentException("rows must be strictly increasing indices in [0, " + hr.length
                            + ") for layer " + layer + ", KV head " + kvHead + "; rows[" + j + "] = " + rows[j]);
                }
            }
            if (m == hr.length) {
                return;   // strictly increasing and in range: every row, nothing to do
            }
            int keep = blocksFor(m);
            boolean keyShared;
            boolean valueShared;
            long[] fresh;
            for (int attempt = 1; ; attempt++) {   // sharing is counted again after a pressure handler ran
                keyShared = anyShared(hr.keyBlocks, hr.blockCount);
                valueShared = anyShared(hr.valueBlocks, hr.blockCount);
                fresh = new long[(keyShared ? keep : 0) + (valueShared ? keep : 0)];
                if (store.tryAllocate(this, fresh, attempt)) {
                    break;
                }
            }
            applyKeep(layer, kvHead, rows, keyShared, valueShared, fresh, 0);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Keeps the given rows of every KV head of one layer, all or nothing: the fresh blocks every head needs (heads
     * whose table shares a block with a fork are rebuilt into fresh blocks) are reserved together before any head
     * changes, so a memory limit hit leaves the whole layer exactly as it was.
     *
     * @param rows {@code [kvHead][]}: strictly increasing row indices of each head (a head's full range keeps it
     *             unchanged)
     */
    public void keep(int layer, int[][] rows) {
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            checkOpen();
            checkHead(layer, 0);
            int kvHeads = layout.kvHeads();
            if (rows == null || rows.length != kvHeads) {
                throw new KvArgumentException("need one row list per KV head (" + kvHeads + ") of layer " + layer
                        + ", got " + (rows == null ? "null" : rows.length));
            }
            int[] lengths = new int[kvHeads];
            for (int h = 0; h < kvHeads; h++) {
                HeadRows hr = heads[layer][h];
                lengths[h] = hr.length;
                int[] r = rows[h];
                if (r == null) {
                    throw new KvArgumentException("rows of layer " + layer + ", KV head " + h + " must not be null");
                }
                for (int j = 0; j < r.length; j++) {
                    if (r[j] < 0 || r[j] >= hr.length || (j > 0 && r[j] <= r[j - 1])) {
                        throw new KvArgumentException("rows must be strictly increasing indices in [0, " + hr.length
                                + ") for layer " + layer + ", KV head " + h + "; rows[" + j + "] = " + r[j]);
                    }
                }
            }
            boolean[] keyShared = new boolean[kvHeads];
            boolean[] valueShared = new boolean[kvHeads];
            long[] fresh;
            for (int attempt = 1; ; attempt++) {   // sharing is counted again after a pressure handler ran
                for (int h = 0; h < kvHeads; h++) {
                    if (heads[layer][h].length != lengths[h]) {
                        throw new KvArgumentException("layer " + layer + ", KV head " + h + " changed while memory "
                                + "was being relieved; select the rows again");
                    }
                }
                int need = 0;
                for (int h = 0; h < kvHeads; h++) {
                    HeadRows hr = heads[layer][h];
                    boolean changes = rows[h].length != hr.length;
                    keyShared[h] = changes && anyShared(hr.keyBlocks, hr.blockCount);
                    valueShared[h] = changes && anyShared(hr.valueBlocks, hr.blockCount);
                    int keep = blocksFor(rows[h].length);
                    need = Math.addExact(need, (keyShared[h] ? keep : 0) + (valueShared[h] ? keep : 0));
                }
                fresh = new long[need];
                if (store.tryAllocate(this, fresh, attempt)) {
                    break;
                }
            }
            int f = 0;
            for (int h = 0; h < kvHeads; h++) {
                if (rows[h].length == heads[layer][h].length) {
                    continue;
                }
                applyKeep(layer, h, rows[h], keyShared[h], valueShared[h], fresh, f);
                int keep = blocksFor(rows[h].length);
                f += (keyShared[h] ? keep : 0) + (valueShared[h] ? keep : 0);
            }
        } finally {
            lock.unlock();
        }
    }

    /** Applies a validated keep to one table with its fresh blocks (already reserved) at {@code fresh[from..]}. */
    private void applyKeep(int layer, int kvHead, int[] rows, boolean keyShared, boolean valueShared, long[] fresh,
                           int from) {
        HeadRows hr = heads[layer][kvHead];
        int m = rows.length;
        int keep = blocksFor(m);
        int rowsBefore = hr.length;
        int blocksBefore = hr.blockCount;
        int f = from;
        if (keyShared) {
            hr.keyBlocks = gather(hr.keyBlocks, hr.blockCount, rows, Arrays.copyOfRange(fresh, f, f + keep));
            f += keep;
        } else {
            compactInPlace(hr.keyBlocks, hr.blockCount, rows);
        }
        if (valueShared) {
            hr.valueBlocks = gather(hr.valueBlocks, hr.blockCount, rows, Arrays.copyOfRange(fresh, f, f + keep));
        } else {
            compactInPlace(hr.valueBlocks, hr.blockCount, rows);
        }
        for (int j = 0; j < m; j++) {
            hr.positions[j] = hr.positions[rows[j]];
        }
        referencedBlocks -= 2L * (hr.blockCount - keep);
        hr.length = m;
        hr.blockCount = keep;
        hr.ensureBlockCapacity(keep);
        hr.addressEpoch = -1;
        hr.trim();
        rowsEvicted += rowsBefore - m;
        modCount++;
        store.recordCompression(this, layer, kvHead, rowsBefore, m, blocksBefore, keep);
    }

    private boolean anyShared(long[] blocks, int count) {
        for (int b = 0; b < count; b++) {
            if (allocator.refCount(blocks[b]) > 1) {
                return true;
            }
        }
        return false;
    }

    /** Copies the kept rows into fresh blocks, drops this table's references to the old ones. */
    private long[] gather(long[] old, int oldCount, int[] rows, long[] fresh) {
        MemorySegment[] src = segments(old, oldCount);
        MemorySegment[] dst = segments(fresh, fresh.length);
        for (int j = 0; j < rows.length; j++) {
            MemorySegment.copy(src[rows[j] / tokensPerBlock], (long) (rows[j] % tokensPerBlock) * rowBytes,
                    dst[j / tokensPerBlock], (long) (j % tokensPerBlock) * rowBytes, rowBytes);
        }
        allocator.releaseAll(old, 0, oldCount);
        long[] table = Arrays.copyOf(fresh, Math.max(4, fresh.length));
        return table;
    }

    /** Moves kept rows forward within exclusively owned blocks and frees the blocks left empty. */
    private void compactInPlace(long[] blocks, int count, int[] rows) {
        MemorySegment[] seg = segments(blocks, count);
        for (int j = 0; j < rows.length; j++) {
            int src = rows[j];   // src >= j: a forward copy never overwrites a row still to be read
            if (src != j) {
                MemorySegment.copy(seg[src / tokensPerBlock], (long) (src % tokensPerBlock) * rowBytes,
                        seg[j / tokensPerBlock], (long) (j % tokensPerBlock) * rowBytes, rowBytes);
            }
        }
        int keep = blocksFor(rows.length);
        allocator.releaseAll(blocks, keep, count);
    }

    MemorySegment[] segments(long[] blocks, int count) {
        MemorySegment[] s = new MemorySegment[count];
        for (int b = 0; b < count; b++) {
            s[b] = allocator.segment(blocks[b]);
        }
        return s;
    }

    /**
     * A new sequence sharing every block of this one (reference counted; no data is copied). Either sequence may
     * append afterwards: a shared partial tail block is copied on first write.
     */
    public Sequence fork() {
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            checkOpen();
            Sequence child = new Sequence(this, store.nextSequenceId());
            for (HeadRows[] layer : heads) {
                for (HeadRows hr : layer) {
                    for (int b = 0; b < hr.blockCount; b++) {
                        allocator.retain(hr.keyBlocks[b]);
                        allocator.retain(hr.valueBlocks[b]);
                    }
                }
            }
            return store.registerFork(child);
        } finally {
            lock.unlock();
        }
    }

    /** Releases every block of this sequence. Idempotent; a no-op after the store was closed. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        ReentrantReadWriteLock.ReadLock lock;
        try {
            lock = store.enter();
        } catch (ClosedException e) {
            closed = true;
            return;
        }
        try {
            if (closed) {
                return;
            }
            for (HeadRows[] layer : heads) {
                for (HeadRows hr : layer) {
                    allocator.releaseAll(hr.keyBlocks, 0, hr.blockCount);
                    allocator.releaseAll(hr.valueBlocks, 0, hr.blockCount);
                    hr.blockCount = 0;
                    hr.length = 0;
                }
            }
            referencedBlocks = 0;
            closed = true;
            modCount++;
            store.unregister(this);
        } finally {
            lock.unlock();
        }
    }

    void markClosedByStore() {
        closed = true;
    }

    // ---------------------------------------------------------------- reads

    /** Rows stored for one (layer, KV head). */
    public int length(int layer, int kvHead) {
        checkOpen();
        checkHead(layer, kvHead);
        return heads[layer][kvHead].length;
    }

    /** Absolute positions of the rows of one (layer, KV head), ascending (a copy). */
    public long[] positions(int layer, int kvHead) {
        checkOpen();
        checkHead(layer, kvHead);
        HeadRows hr = heads[layer][kvHead];
        return Arrays.copyOf(hr.positions, hr.length);
    }

    /** Dequantized K rows of one (layer, KV head) into {@code dst[0 .. length*headDim)}. */
    public void readKeys(int layer, int kvHead, float[] dst) {
        read(layer, kvHead, dst, true);
    }

    /** Dequantized V rows of one (layer, KV head) into {@code dst[0 .. length*headDim)}. */
    public void readValues(int layer, int kvHead, float[] dst) {
        read(layer, kvHead, dst, false);
    }

    private void read(int layer, int kvHead, float[] dst, boolean keys) {
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            checkOpen();
            checkHead(layer, kvHead);
            HeadRows hr = heads[layer][kvHead];
            int dim = layout.headDim();
            long need = (long) hr.length * dim;
            if (dst == null || dst.length < need) {
                throw new KvArgumentException("dst must hold length x headDim = " + need + " floats, got "
                        + (dst == null ? "null" : dst.length));
            }
            long[] blocks = keys ? hr.keyBlocks : hr.valueBlocks;
            for (int b = 0; b < hr.blockCount; b++) {
                MemorySegment seg = allocator.segment(blocks[b]);
                int rowsHere = Math.min(tokensPerBlock, hr.length - b * tokensPerBlock);
                RowCodec.read(seg, 0, dst, b * tokensPerBlock * dim, rowsHere * dim, layout.dtype());
            }
        } finally {
            lock.unlock();
        }
    }

    /** Memory view of this sequence (referenced, exclusive, shared and peak bytes; rows; rows evicted). */
    public SequenceMetrics metrics() {
        checkOpen();
        return MetricsCollector.sequence(this);
    }

    /** Bytes of all blocks this sequence references (blocks shared with a fork count in both). */
    public long referencedBytes() {
        return referencedBlocks * layout.blockBytes();
    }

    // ---------------------------------------------------------------- kernel access

    /** Blocks in the table of one (layer, KV head); the last one may be partly filled. */
    public int blockCount(int layer, int kvHead) {
        checkOpen();
        checkHead(layer, kvHead);
        return heads[layer][kvHead].blockCount;
    }

    /**
     * Native address of a K block. Valid until this sequence is mutated or the store compacts; hold a
     * {@link KvStore#readAccess()} while native code reads through it.
     */
    public long keyBlockAddress(int layer, int kvHead, int block) {
        return addresses(layer, kvHead, block, true);
    }

    /** Native address of a V block; same validity as {@link #keyBlockAddress}. */
    public long valueBlockAddress(int layer, int kvHead, int block) {
        return addresses(layer, kvHead, block, false);
    }

    private long addresses(int layer, int kvHead, int block, boolean keys) {
        checkOpen();
        checkHead(layer, kvHead);
        HeadRows hr = heads[layer][kvHead];
        if (block < 0 || block >= hr.blockCount) {
            throw new KvArgumentException("block must be in [0, " + hr.blockCount + "), got " + block);
        }
        refreshAddresses(hr);
        return keys ? hr.keyAddresses[block] : hr.valueAddresses[block];
    }

    /**
     * Writes the K and V block addresses of one (layer, KV head) as int64 into {@code keyOut} and {@code valueOut}
     * starting at element {@code index}. Returns the number of blocks written. Same validity as
     * {@link #keyBlockAddress}.
     */
    public int copyBlockAddresses(int layer, int kvHead, MemorySegment keyOut, MemorySegment valueOut, long index) {
        checkOpen();
        checkHead(layer, kvHead);
        HeadRows hr = heads[layer][kvHead];
        long end = (index + hr.blockCount) * Long.BYTES;
        if (index < 0 || end > keyOut.byteSize() || end > valueOut.byteSize()) {
            throw new KvArgumentException("address arrays too small: need " + (index + hr.blockCount)
                    + " int64 elements");
        }
        refreshAddresses(hr);
        MemorySegment.copy(hr.keyAddresses, 0, keyOut, JAVA_LONG, index * Long.BYTES, hr.blockCount);
        MemorySegment.copy(hr.valueAddresses, 0, valueOut, JAVA_LONG, index * Long.BYTES, hr.blockCount);
        return hr.blockCount;
    }

    private void refreshAddresses(HeadRows hr) {
        long epoch = store.relocationEpoch;
        synchronized (hr) {
            if (hr.addressEpoch != epoch) {
                for (int b = 0; b < hr.blockCount; b++) {
                    hr.keyAddresses[b] = allocator.address(hr.keyBlocks[b]);
                    hr.valueAddresses[b] = allocator.address(hr.valueBlocks[b]);
                }
                hr.addressEpoch = epoch;
            }
        }
    }

    // ---------------------------------------------------------------- checks

    int blocksFor(int rows) {
        return (rows + tokensPerBlock - 1) / tokensPerBlock;
    }

    void checkOpen() {
        if (closed) {
            throw new ClosedException("sequence " + id);
        }
        store.checkOpen();
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
    }

    void checkHead(int layer, int kvHead) {
        checkLayer(layer);
        if (kvHead < 0 || kvHead >= layout.kvHeads()) {
            throw new KvArgumentException("kvHead must be in [0, " + layout.kvHeads() + "), got " + kvHead);
        }
    }

    // ---------------------------------------------------------------- cross-layer key sharing (PoD)

    /**
     * Replaces K block {@code block} of (layer, kvHead) by an alias of the K block at the same index of
     * {@code baseLayer}'s table for the same KV head (one more reference to it); this table's own copy is released,
     * so its bytes are freed unless a fork still references it. Values are untouched. See {@link KeySharing}.
     *
     * @param baseLayer a layer below {@code layer}; its block must be full and hold the same positions
     * @return whether the table changed (false if the block already was that alias)
     * @throws KeySharingException if the base layer is not below, a block is not full, or positions differ
     */
    public boolean aliasKeyBlock(int layer, int kvHead, int block, int baseLayer) {
        return KeySharing.alias(this, layer, kvHead, block, baseLayer);
    }

    /**
     * PoD demotion for one (layer, KV head): aliases, to {@code baseLayer}'s keys, every full K block all of whose
     * rows are distant for a query at {@code queryPosition}, i.e. have positions in
     * {@code [sinks, queryPosition - recent]}; blocks holding any proximal row (a sink, or one of the {@code recent}
     * positions up to the query's) keep their own keys. Idempotent; call it as the query position advances. All
     * candidate blocks are checked before any is aliased.
     *
     * @param sinks  leading positions that always keep their own keys, {@code >= 0}
     * @param recent positions up to and including the query's that keep their own keys, {@code >= 1}
     * @return K blocks newly aliased (each one an own copy released)
     * @throws KeySharingException as {@link #aliasKeyBlock}, or for negative sinks / non-positive recent
     */
    public int shareDistantKeys(int layer, int kvHead, int baseLayer, int sinks, int recent, long queryPosition) {
        return KeySharing.demote(this, layer, kvHead, baseLayer, sinks, recent, queryPosition);
    }

    /**
     * The layer whose own K block block {@code block} of (layer, kvHead) is: the lowest layer whose table names the
     * same block at that index, or {@code layer} itself when the block is not an alias.
     */
    public int keyBlockBaseLayer(int layer, int kvHead, int block) {
        return KeySharing.baseLayer(this, layer, kvHead, block);
    }

    /** Whether K block {@code block} of (layer, kvHead) is an alias of a lower layer's block. */
    public boolean isKeyBlockAliased(int layer, int kvHead, int block) {
        return keyBlockBaseLayer(layer, kvHead, block) != layer;
    }
}
