package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvTensor;
import io.kvslab.KvSlabException;
import io.kvslab.MemoryLimitExceededException;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * The one owner of a sequence's table state: the {@code [layer][kvHead]} {@link BlockTable}s and the sequence's
 * block bookkeeping (referenced and peak blocks, rows evicted, modification count). Every sequence operation
 * (append, keep, remove a range, fork, shift positions, alias a key block, prefix adoption, restore) is a method
 * here, in the spirit of llama.cpp's {@code seq_rm / seq_cp / seq_keep / seq_add}; nothing else writes the tables.
 *
 * <p><b>Lifetime guard.</b> Each sequence has a {@link ReentrantReadWriteLock}. Every read of its block memory
 * (attention kernels, row reads, raw reads for snapshots) holds the read lock for the whole copy or native call;
 * every operation that can free, move or rewrite its blocks holds the write lock. Both are taken inside the
 * store's shared lock (compaction and store close hold its exclusive side). Lock order, everywhere:
 * <em>store lock, then one sequence lock, then the prefix cache's monitor, then the allocator's monitor</em>. A
 * thread never waits for a second sequence lock while holding one (a per-thread count enforces it): inside a
 * memory-pressure handler (where the allocating thread holds its own sequence's write lock), or inside any other
 * sequence's lock, other sequences are only try-locked and a busy one fails with {@link ConcurrentUseException}. A mutation while the same thread holds this sequence's read lock fails
 * with {@link KvSlabException} instead of deadlocking.
 *
 * <p>No public method takes or returns a block handle, address or block segment.
 */
public final class SequenceTables {
    private final TableStore store;
    private final TableHost host;
    final SlabAllocator allocator;
    final KvLayout layout;
    final int tokensPerBlock;
    /** Bytes of one stored K row and of one stored V row (they differ when K and V types differ). */
    final long keyRowBytes;
    final long valueRowBytes;
    private final long id;
    final BlockTable[][] tables;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** Reusable float-array row sources of append (used under the write lock only): append makes no object. */
    private final RowSource.Floats kFloats;
    private final RowSource.Floats vFloats;
    /** The same for tensor sources. */
    private final RowSource.Tensor kTensor = new RowSource.Tensor();
    private final RowSource.Tensor vTensor = new RowSource.Tensor();
    /** kvs_append_rows's per-head offsets and addresses (used under the write lock only). */
    private final long[] appendRows;
    /** {@link #appendRows} as the downcall's argument, made once: an append makes no object. */
    private final MemorySegment appendRowsSegment;
    /**
     * What an append changed in each head's table before its rows were written, to undo if a write fails (used
     * under the write lock only): per head, the block count before ({@code appendUndoCounts}), and the shared K and
     * V tails it replaced by private copies ({@code appendUndoTails[2h]}, {@code [2h + 1]}, valid where
     * {@code appendUndoReplaced} says so). Those tails are released only once the append succeeds, so they stay
     * alive to be put back.
     */
    private final int[] appendUndoCounts;
    private final long[] appendUndoTails;
    private final boolean[] appendUndoReplaced;
    private volatile long referencedBlocks;
    private volatile long peakReferencedBlocks;
    private volatile long rowsEvicted;
    private volatile int modCount;
    /**
     * Bumped on every release of the write lock, so any table change is seen as a new version by the next reader
     * (written under the write lock, read under the read lock: the lock orders them). Keys the kernels' cached
     * block-address arrays ({@link TableAttention}).
     */
    private long tableVersion;
    private volatile boolean closed;
    /**
     * Leading rows (from row 0, in every table) that hold exactly what append wrote: lowered by every operation
     * that changes, drops, moves, re-rotates or aliases a row below it (compression, eviction, position shifts,
     * PoD key sharing, a wholesale install). Rows below {@code min(pristineRows, denseRows())} are what a fresh
     * prefill of the same tokens would store, so only they may be published to a shared tier.
     */
    private volatile int pristineRows = Integer.MAX_VALUE;

    public SequenceTables(TableStore store, KvLayout layout, long id) {
        if (store == null || layout == null || layout.keyBlockBytes() != store.allocator.blockBytes(SlabAllocator.KEY_CLASS)
                || layout.valueBlockBytes() != store.allocator.blockBytes(SlabAllocator.VALUE_CLASS)) {
            throw new KvArgumentException("tables need their store and a layout of its block size");
        }
        this.store = store;
        this.host = store.host;
        this.allocator = store.allocator;
        this.layout = layout;
        this.tokensPerBlock = layout.tokensPerBlock();
        this.keyRowBytes = layout.keyRowBytes();
        this.valueRowBytes = layout.valueRowBytes();
        this.id = id;
        this.kFloats = new RowSource.Floats(layout.kvHeads(), layout.headDim());
        this.vFloats = new RowSource.Floats(layout.kvHeads(), layout.headDim());
        this.appendRows = new long[4 * layout.kvHeads()];
        this.appendRowsSegment = MemorySegment.ofArray(appendRows);
        this.appendUndoCounts = new int[layout.kvHeads()];
        this.appendUndoTails = new long[2 * layout.kvHeads()];
        this.appendUndoReplaced = new boolean[2 * layout.kvHeads()];
        this.tables = new BlockTable[layout.layers()][layout.kvHeads()];
        for (BlockTable[] layer : tables) {
            for (int h = 0; h < layer.length; h++) {
                layer[h] = new BlockTable();
            }
        }
    }

    private SequenceTables(SequenceTables parent, long id) {
        this.store = parent.store;
        this.host = parent.host;
        this.allocator = parent.allocator;
        this.layout = parent.layout;
        this.tokensPerBlock = parent.tokensPerBlock;
        this.keyRowBytes = parent.keyRowBytes;
        this.valueRowBytes = parent.valueRowBytes;
        this.id = id;
        this.kFloats = new RowSource.Floats(layout.kvHeads(), layout.headDim());
        this.vFloats = new RowSource.Floats(layout.kvHeads(), layout.headDim());
        this.appendRows = new long[4 * layout.kvHeads()];
        this.appendRowsSegment = MemorySegment.ofArray(appendRows);
        this.appendUndoCounts = new int[layout.kvHeads()];
        this.appendUndoTails = new long[2 * layout.kvHeads()];
        this.appendUndoReplaced = new boolean[2 * layout.kvHeads()];
        this.tables = new BlockTable[layout.layers()][layout.kvHeads()];
        for (int l = 0; l < tables.length; l++) {
            for (int h = 0; h < tables[l].length; h++) {
                tables[l][h] = parent.tables[l][h].copy();
            }
        }
        this.referencedBlocks = parent.referencedBlocks;
        this.peakReferencedBlocks = parent.referencedBlocks;
        this.pristineRows = parent.pristineRows;
    }

    public long id() {
        return id;
    }

    public boolean isClosed() {
        return closed;
    }

    /** Bumped by every mutation; lets the store detect a pressure handler that mutated the allocating sequence. */
    public int modCount() {
        return modCount;
    }

    // ================================================================ lifetime guard

    /**
     * Sequence locks (read or write holds, over all sequences) the calling thread holds. A thread holding one never
     * waits for another: it only try-locks (the lock order allows one sequence lock at a time).
     */
    private static final ThreadLocal<int[]> HELD = ThreadLocal.withInitial(() -> new int[1]);
    /** The block list of an append that needs no new block (shared: it is never written, having length 0). */

    /** Whether the calling thread holds this sequence's lock (either side). */
    private boolean heldHere() {
        return lock.isWriteLockedByCurrentThread() || lock.getReadHoldCount() > 0;
    }

    /** Whether the calling thread must not wait for this sequence's lock (it holds another, or runs a handler). */
    private boolean mustNotWait() {
        return !heldHere() && (HELD.get()[0] > 0 || host.inPressureHandler());
    }

    /** Store shared lock, then this sequence's read lock; throws ClosedException if either is closed. */
    void beginRead() {
        beginRead(mustNotWait());
    }

    /**
     * Read locks of several sequences of one store for one call (batched attention), taken in ascending id order,
     * the one global order every multi-sequence reader uses, so two batches cannot wait for each other in a cycle;
     * a writer holds one sequence lock only and never waits for another. A thread that already holds another
     * sequence's lock or runs a memory-pressure handler only try-locks (as {@link #beginRead()} does). On failure
     * (a closed or busy sequence) the locks taken so far are released and the exception propagates.
     *
     * @param ordered distinct sequences of one store, ascending by {@link #id()}, in its first {@code count} elements
     */
    static void beginReadAll(SequenceTables[] ordered, int count) {
        if (count == 0) {
            return;
        }
        boolean tryOnly = HELD.get()[0] > 0 || ordered[0].host.inPressureHandler();
        int taken = 0;
        try {
            for (int i = 0; i < count; i++) {
                SequenceTables t = ordered[i];
                t.beginRead(tryOnly && !t.heldHere());
                taken++;
            }
        } catch (RuntimeException e) {
            for (int i = taken - 1; i >= 0; i--) {
                ordered[i].endRead();
            }
            throw e;
        }
    }

    /** Releases what {@link #beginReadAll} took, in reverse order. */
    static void endReadAll(SequenceTables[] ordered, int count) {
        for (int i = count - 1; i >= 0; i--) {
            ordered[i].endRead();
        }
    }

    /** Whether the two sequences live in the same store. */
    boolean sameStore(SequenceTables other) {
        return store == other.store;
    }

    private void beginRead(boolean tryOnly) {
        store.enterShared();
        try {
            ReentrantReadWriteLock.ReadLock r = lock.readLock();
            if (tryOnly) {
                if (!r.tryLock()) {
                    throw busy("read");
                }
            } else {
                r.lock();
            }
        } catch (RuntimeException e) {
            store.exitShared();
            throw e;
        }
        HELD.get()[0]++;
        if (closed) {
            endRead();
            throw new ClosedException("sequence " + id);
        }
    }

    void endRead() {
        HELD.get()[0]--;
        lock.readLock().unlock();
        store.exitShared();
    }

    /**
     * The tables' version for a reader holding the read lock, or -1 when the calling thread also holds the write lock
     * (it may be in the middle of a change, so nothing derived from the tables may be cached).
     */
    long readVersion() {
        return lock.isWriteLockedByCurrentThread() ? -1 : tableVersion;
    }

    /** Store shared lock, then this sequence's write lock; see the class comment for the failure cases. */
    void beginWrite() {
        store.enterShared();
        try {
            if (lock.getReadHoldCount() > 0 && !lock.isWriteLockedByCurrentThread()) {
                throw new KvSlabException("sequence " + id + " cannot be modified or closed by a thread that is "
                        + "reading it (it holds the sequence's read access); finish the read first");
            }
            if (host.inPressureHandler() && lock.isWriteLockedByCurrentThread()) {
                throw new RequesterMutationException(id);
            }
            if (mustNotWait()) {
                if (!lock.writeLock().tryLock()) {
                    throw busy("modify");
                }
            } else {
                lock.writeLock().lock();
            }
        } catch (RuntimeException e) {
            store.exitShared();
            throw e;
        }
        HELD.get()[0]++;
        if (closed) {
            endWrite();
            throw new ClosedException("sequence " + id);
        }
    }

    void endWrite() {
        HELD.get()[0]--;
        tableVersion++;
        lock.writeLock().unlock();
        store.exitShared();
    }

    private ConcurrentUseException busy(String what) {
        return new ConcurrentUseException("sequence " + id + " is in use by another thread, and this thread holds "
                + "another sequence's lock or runs a memory-pressure handler, so it cannot wait to " + what + " it "
                + "without risking a deadlock (in handlers use MemoryPressure.tryKeep / tryClose, which skip busy "
                + "sequences)");
    }

    /** Runs {@code body} holding this sequence's write lock (inside the store's shared lock). */
    public <T> T underWriteLock(Supplier<T> body) {
        beginWrite();
        try {
            return body.get();
        } finally {
            endWrite();
        }
    }

    /** Runs {@code body} holding this sequence's read lock (inside the store's shared lock). */
    public <T> T underReadLock(Supplier<T> body) {
        beginRead();
        try {
            return body.get();
        } finally {
            endRead();
        }
    }

    private void requireWrite() {
        if (!lock.isWriteLockedByCurrentThread()) {
            throw new IllegalStateException("sequence " + id + ": table mutation without its write lock");
        }
    }

    private void requireRead() {
        if (lock.getReadHoldCount() == 0 && !lock.isWriteLockedByCurrentThread()) {
            throw new IllegalStateException("sequence " + id + ": block read without its read lock");
        }
    }

    // ================================================================ allocation

    /**
     * Allocates {@code keys} K blocks and {@code values} V blocks (all or nothing); null after pressure handlers
     * freed memory (count again).
     */
    private FreshBlocks tryAllocate(long keys, long values, int attempt) {
        int k = checkedBlockCount(keys);
        int v = checkedBlockCount(values);
        checkedBlockCount((long) k + v);
        if (k == 0 && v == 0) {
            return FreshBlocks.NONE;   // most appends stay inside their blocks: nothing to allocate
        }
        try {
            return FreshBlocks.allocate(allocator, k, v);
        } catch (MemoryLimitExceededException e) {
            if (!host.relieve(id, e, attempt)) {
                throw e;
            }
            return null;
        }
    }

    private void referenced(long delta) {
        long r = referencedBlocks + delta;
        referencedBlocks = r;
        if (r > peakReferencedBlocks) {
            peakReferencedBlocks = r;
        }
    }

    // ================================================================ append

    /**
     * Appends {@code n} tokens' K and V rows to every KV head of {@code layer}: {@code k} and {@code v} hold
     * {@code n * kvHeads * headDim} floats laid out [token][kvHead][dim]; positions are {@code positions[i]}, or
     * {@code single} when {@code positions} is null (n == 1).
     */
    public void append(int layer, float[] k, float[] v, int n, long[] positions, long single) {
        if (k == null || v == null) {
            throw new KvArgumentException("k and v must not be null");
        }
        int width = layout.kvHeads() * layout.headDim();
        long expected = (long) Math.max(n, 0) * width;
        if (n > 0 && (k.length != expected || v.length != expected)) {
            throw new KvArgumentException("k and v must have " + n + " tokens x " + layout.kvHeads()
                    + " KV heads x " + layout.headDim() + " = " + expected + " floats, got " + k.length
                    + " and " + v.length);
        }
        appendRows(layer, k, v, null, null, n, positions, single);
    }

    /**
     * Appends the rows of caller tensors {@code k} and {@code v} ({@code [tokens, kvHeads, headDim]}, any element
     * type and strides) to every KV head of {@code layer}: one check of every value, then one copy per row into
     * block memory (no conversion when the tensor's type is the store's).
     */
    public void append(int layer, KvTensor k, KvTensor v, long[] positions, long single) {
        TensorCodec.checkShape("k", k, layout.kvHeads(), layout.headDim());
        TensorCodec.checkShape("v", v, layout.kvHeads(), layout.headDim());
        if (k.tokens() != v.tokens()) {
            throw new KvArgumentException("k and v must hold the same number of tokens, got " + k.tokens() + " and "
                    + v.tokens());
        }
        if (positions != null && positions.length != k.tokens()) {
            throw new KvArgumentException("positions must have one entry per token (" + k.tokens() + "), got "
                    + positions.length);
        }
        appendRows(layer, null, null, k, v, k.tokens(), positions, single);
    }

    /** Rows from float arrays ({@code kf}, {@code vf}) or, when those are null, from tensors {@code kt}, {@code vt}. */
    private void appendRows(int layer, float[] kf, float[] vf, KvTensor kt, KvTensor vt, int n, long[] positions,
                            long single) {
        beginWrite();
        try {
            // The float sources are this sequence's reusable pair, pointed at the caller's arrays under the lock.
            RowSource k = kf != null ? kFloats.of(kf) : kTensor.of(kt);
            RowSource v = vf != null ? vFloats.of(vf) : vTensor.of(vt);
            checkLayer(layer);
            if (n <= 0) {
                throw new KvArgumentException("a chunk needs at least one token, got " + n);
            }
            if (positions == null && n != 1) {
                throw new KvArgumentException("positions must not be null for a chunk of " + n + " tokens");
            }
            BlockTable[] rows = tables[layer];
            long last = -1;
            for (BlockTable t : rows) {
                last = Math.max(last, t.lastPosition());
            }
            for (int i = 0; i < n; i++) {
                long p = positions == null ? single : positions[i];
                // Long.MAX_VALUE is Sequence.END, the open end of every position range: a row there could never
                // be removed or kept by a range
                if (p <= last || p == Long.MAX_VALUE) {
                    throw new KvArgumentException("position " + p + (positions == null ? "" : " (token " + i
                            + " of the chunk)") + " must be in [0, Long.MAX_VALUE) (Sequence.END is excluded)"
                            + (last < 0 ? "" : " and greater than " + last + ", the previous position in layer "
                            + layer));
                }
                last = p;
            }
            for (BlockTable t : rows) {
                if ((long) t.length + n > Integer.MAX_VALUE - tokensPerBlock) {
                    throw new KvArgumentException("a table would exceed " + (Integer.MAX_VALUE - tokensPerBlock)
                            + " rows");
                }
            }
            // Every step that reads the caller's memory (check, copies) may find it closed by another thread
            // (NativeAppend's downcall keeps its arguments open for the call; the Java reads cannot): then the
            // blocks reserved so far are returned and the caller gets one typed exception, whichever step it was.
            long newBlocks = 0;
            FreshBlocks fresh = null;
            try {
                k.check("k", layout.keyDtype());
                v.check("v", layout.valueDtype());

                // Reserve every block first: new tail blocks, and private copies of shared partial tails.
                // Counted again after a memory-pressure handler ran: it may have changed what is shared.
                for (int attempt = 1; fresh == null; attempt++) {
                    newBlocks = 0;
                    long keyCopies = 0;
                    long valueCopies = 0;
                    for (BlockTable t : rows) {
                        newBlocks += 2L * (blocksFor(t.length + n) - t.blockCount);
                        if (t.length % tokensPerBlock != 0) {
                            keyCopies += allocator.refCount(t.keyBlocks[t.blockCount - 1]) > 1 ? 1 : 0;
                            valueCopies += allocator.refCount(t.valueBlocks[t.blockCount - 1]) > 1 ? 1 : 0;
                        }
                    }
                    fresh = tryAllocate(newBlocks / 2 + keyCopies, newBlocks / 2 + valueCopies, attempt);
                }
                writeAppend(rows, k, v, kt, vt, n, fresh);
            } catch (RuntimeException | Error e) {
                if (fresh != null) {
                    undoAppend(rows, fresh);
                }
                if (e instanceof IllegalStateException && kt != null
                        && (!kt.data().scope().isAlive() || !vt.data().scope().isAlive())) {
                    KvArgumentException closed = new KvArgumentException("the memory of k or v was closed during "
                            + "the append; nothing was appended");
                    closed.initCause(e);
                    throw closed;
                }
                throw e;
            }
            host.appended(id, fresh.size());   // uses up a scheduler's reservation for this sequence

            // Published only now that every head's rows are written (under the write lock, as before).
            for (BlockTable t : rows) {
                for (int i = 0; i < n; i++) {
                    t.positions[t.length + i] = positions == null ? single : positions[i];
                }
                t.length += n;
            }
            // The shared tails replaced by private copies: this table's references go only now (see appendUndoTails).
            for (int i = 0; i < 2 * rows.length; i++) {
                if (appendUndoReplaced[i]) {
                    allocator.release(appendUndoTails[i]);
                    appendUndoReplaced[i] = false;
                }
            }
            // A fork sibling may have dropped its reference since we counted: return unused copy blocks.
            fresh.releaseUnused(allocator);
            referenced(newBlocks);
            modCount++;
        } finally {
            kFloats.release();
            vFloats.release();
            kTensor.release();
            vTensor.release();
            endWrite();
        }
    }

    /**
     * The part of an append that writes: attaches each head's new blocks (private copies of shared partial tails
     * first) and writes the rows into them. The rows are not published (lengths and positions unchanged). Records
     * in {@link #appendUndoCounts} and {@link #appendUndoTails} what {@link #undoAppend} needs if it throws.
     * Package-private, with {@link #undoAppend}, for {@code AppendUndoTest}; called under the write lock.
     */
    void writeAppend(BlockTable[] rows, RowSource k, RowSource v, KvTensor kt, KvTensor vt, int n,
                             FreshBlocks fresh) {
        for (int h = 0; h < rows.length; h++) {
            appendUndoCounts[h] = rows[h].blockCount;
        }
        // One token of f16 tensors into an f16 store: the rows' copies go in one native call (NativeAppend).
        boolean nativeCopy = n == 1 && kt != null && kt.type() == DType.F16 && vt.type() == DType.F16
                && layout.keyDtype() == DType.F16 && layout.valueDtype() == DType.F16 && kt.rowsContiguous()
                && vt.rowsContiguous() && NativeAppend.enabled();
        for (int h = 0; h < rows.length; h++) {
            BlockTable t = rows[h];
            int tailRows = t.length % tokensPerBlock;
            if (tailRows != 0) {
                int tail = t.blockCount - 1;
                if (allocator.refCount(t.keyBlocks[tail]) > 1) {
                    appendUndoTails[2 * h] = t.keyBlocks[tail];
                    appendUndoReplaced[2 * h] = true;
                    t.keyBlocks[tail] = copyTail(t.keyBlocks[tail], fresh.take(true), tailRows * keyRowBytes);
                }
                if (allocator.refCount(t.valueBlocks[tail]) > 1) {
                    appendUndoTails[2 * h + 1] = t.valueBlocks[tail];
                    appendUndoReplaced[2 * h + 1] = true;
                    t.valueBlocks[tail] = copyTail(t.valueBlocks[tail], fresh.take(false),
                            tailRows * valueRowBytes);
                }
            }
            int target = blocksFor(t.length + n);
            t.ensureBlockCapacity(target);
            while (t.blockCount < target) {
                t.keyBlocks[t.blockCount] = fresh.take(true);
                t.valueBlocks[t.blockCount] = fresh.take(false);
                t.blockCount++;
            }
            t.ensureRowCapacity(t.length + n);
            if (nativeCopy) {
                int block = t.length / tokensPerBlock;
                int slot = t.length % tokensPerBlock;
                appendRows[4 * h] = kt.elementOffset(0, h, 0) * Short.BYTES;
                appendRows[4 * h + 1] = vt.elementOffset(0, h, 0) * Short.BYTES;
                appendRows[4 * h + 2] = allocator.address(t.keyBlocks[block]) + slot * keyRowBytes;
                appendRows[4 * h + 3] = allocator.address(t.valueBlocks[block]) + slot * valueRowBytes;
            } else {
                writeRows(t, h, k, v, n);
            }
        }
        if (nativeCopy) {
            try {
                NativeAppend.copy(kt.data(), vt.data(), appendRowsSegment, rows.length, keyRowBytes, valueRowBytes);
            } catch (KvSlabException e) {
                // Cannot happen with the arguments built above; if it does, the Java copy writes the same bytes
                // (or fails as it always could), so the rows below are never published unwritten.
                for (int h = 0; h < rows.length; h++) {
                    writeRows(rows[h], h, k, v, n);
                }
            }
        }
    }

    /**
     * Puts every head's table back as it was before {@link #writeAppend} and returns every reserved block: block
     * counts and the shared tails replaced by copies are restored (this table still holds their references), and
     * all of {@code fresh} is released, attached or not. Lengths and positions were never changed.
     */
    void undoAppend(BlockTable[] rows, FreshBlocks fresh) {
        // Every block this append put in a table came from fresh: restore the tables, then return all of fresh
        // (taken or not), so a partly done step (take or copy failing) cannot release a shared tail or leak a block.
        for (int h = 0; h < rows.length; h++) {
            BlockTable t = rows[h];
            int before = appendUndoCounts[h];
            t.blockCount = before;
            if (appendUndoReplaced[2 * h]) {
                t.keyBlocks[before - 1] = appendUndoTails[2 * h];
                appendUndoReplaced[2 * h] = false;
            }
            if (appendUndoReplaced[2 * h + 1]) {
                t.valueBlocks[before - 1] = appendUndoTails[2 * h + 1];
                appendUndoReplaced[2 * h + 1] = false;
            }
        }
        fresh.releaseAll(allocator);
    }

    private static int checkedBlockCount(long blocks) {
        if (blocks > Integer.MAX_VALUE - 8) {
            throw new KvArgumentException("one operation would need " + blocks + " blocks; at most "
                    + (Integer.MAX_VALUE - 8) + " are allowed");
        }
        return (int) blocks;
    }

    private void writeRows(BlockTable t, int h, RowSource k, RowSource v, int n) {
        int i = 0;
        while (i < n) {
            int row = t.length + i;
            int block = row / tokensPerBlock;
            int inBlock = Math.min(n - i, tokensPerBlock - row % tokensPerBlock);
            // The slab's own segment plus the block's offset: no slice object per block (append allocates nothing).
            long kBlock = t.keyBlocks[block];
            long vBlock = t.valueBlocks[block];
            int slot = row % tokensPerBlock;
            k.writeRows(i, inBlock, h, allocator.slabSegment(kBlock), allocator.offsetInSlab(kBlock) + slot * keyRowBytes,
                    keyRowBytes, layout.keyDtype());
            v.writeRows(i, inBlock, h, allocator.slabSegment(vBlock),
                    allocator.offsetInSlab(vBlock) + slot * valueRowBytes, valueRowBytes, layout.valueDtype());
            i += inBlock;
        }
    }

    /** Copies a shared tail's first {@code bytes} into {@code fresh}; the caller releases {@code shared} later. */
    private long copyTail(long shared, long fresh, long bytes) {
        MemorySegment.copy(allocator.segment(shared), 0, allocator.segment(fresh), 0, bytes);
        return fresh;
    }

    // ================================================================ keep / remove / copy range

    /**
     * Keeps only the given rows of one (layer, KV head), in order, and frees the rest: kept rows move to the
     * front (bitwise unchanged, with their positions), emptied blocks are freed. Shared blocks are never modified:
     * a table sharing any block with another table is rebuilt into fresh blocks.
     *
     * @param rows strictly increasing row indices in {@code [0, length(layer, kvHead))}; empty frees every row
     */
    public void keep(int layer, int kvHead, int[] rows) {
        beginWrite();
        try {
            checkHead(layer, kvHead);
            BlockTable t = tables[layer][kvHead];
            if (rows == null) {
                throw new KvArgumentException("rows must not be null");
            }
            int m = rows.length;
            for (int j = 0; j < m; j++) {
                if (rows[j] < 0 || rows[j] >= t.length || (j > 0 && rows[j] <= rows[j - 1])) {
                    throw new KvArgumentException("rows must be strictly increasing indices in [0, " + t.length
                            + ") for layer " + layer + ", KV head " + kvHead + "; rows[" + j + "] = " + rows[j]);
                }
            }
            if (m == t.length) {
                return;   // strictly increasing and in range: every row, nothing to do
            }
            int rowsBefore = t.length;
            int blocksBefore = t.blockCount;
            int[][][] keep = new int[tables.length][tables[0].length][];
            keep[layer][kvHead] = rows;
            keepTables(keep);
            rowsEvicted += rowsBefore - m;
            host.compressed(id, layer, kvHead, rowsBefore, m, blocksBefore, t.blockCount);
        } finally {
            endWrite();
        }
    }

    /**
     * Keeps {@code rows[h]} of every KV head h of {@code layer}, all heads or none (one reservation for all).
     * Every list is validated before anything changes; a head's full range leaves it unchanged.
     */
    public void keepLayer(int layer, int[][] rows) {
        checkLayer(layer);
        int kvHeads = layout.kvHeads();
        if (rows == null || rows.length != kvHeads) {
            throw new KvArgumentException("need one row list per KV head (" + kvHeads + ") of layer " + layer
                    + ", got " + (rows == null ? "null" : rows.length));
        }
        beginWrite();
        try {
            int[][][] keep = new int[tables.length][kvHeads][];
            for (int h = 0; h < kvHeads; h++) {
                BlockTable t = tables[layer][h];
                int[] r = rows[h];
                if (r == null) {
                    throw new KvArgumentException("rows of layer " + layer + ", KV head " + h + " must not be null");
                }
                for (int j = 0; j < r.length; j++) {
                    if (r[j] < 0 || r[j] >= t.length || (j > 0 && r[j] <= r[j - 1])) {
                        throw new KvArgumentException("rows must be strictly increasing indices in [0, " + t.length
                                + ") for layer " + layer + ", KV head " + h + "; rows[" + j + "] = " + r[j]);
                    }
                }
                keep[layer][h] = r.length == t.length ? null : r;
            }
            int[] before = new int[kvHeads];
            int[] blocksBefore = new int[kvHeads];
            for (int h = 0; h < kvHeads; h++) {
                before[h] = tables[layer][h].length;
                blocksBefore[h] = tables[layer][h].blockCount;
            }
            keepTables(keep);
            for (int h = 0; h < kvHeads; h++) {
                if (keep[layer][h] != null) {
                    BlockTable t = tables[layer][h];
                    rowsEvicted += before[h] - t.length;
                    host.compressed(id, layer, h, before[h], t.length, blocksBefore[h], t.blockCount);
                }
            }
        } finally {
            endWrite();
        }
    }

    /**
     * Removes the rows whose positions lie in {@code [from, to)} from every (layer, KV head), freeing blocks that
     * empty out (like {@code llama_memory_seq_rm}). Returns the rows removed over all tables.
     */
    public long removePositions(long from, long to) {
        checkRange(from, to);
        beginWrite();
        try {
            int[][][] keep = new int[tables.length][][];
            long removed = 0;
            for (int l = 0; l < tables.length; l++) {
                keep[l] = new int[tables[l].length][];
                for (int h = 0; h < tables[l].length; h++) {
                    BlockTable t = tables[l][h];
                    int a = t.lowerBound(from);
                    int b = t.lowerBound(to);
                    if (a == b) {
                        continue;
                    }
                    int[] rows = new int[t.length - (b - a)];
                    for (int j = 0; j < a; j++) {
                        rows[j] = j;
                    }
                    for (int j = b; j < t.length; j++) {
                        rows[a + j - b] = j;
                    }
                    keep[l][h] = rows;
                    removed += b - a;
                }
            }
            if (removed > 0) {
                keepTables(keep);
                host.removed(removed);
            }
            return removed;
        } finally {
            endWrite();
        }
    }

    /** Keeps only the rows whose positions lie in {@code [from, to)}, in every (layer, KV head). */
    public void keepPositions(long from, long to) {
        checkRange(from, to);
        beginWrite();
        try {
            int[][][] keep = new int[tables.length][][];
            long removed = 0;
            for (int l = 0; l < tables.length; l++) {
                keep[l] = new int[tables[l].length][];
                for (int h = 0; h < tables[l].length; h++) {
                    BlockTable t = tables[l][h];
                    int a = t.lowerBound(from);
                    int b = t.lowerBound(to);
                    if (a == 0 && b == t.length) {
                        continue;
                    }
                    int[] rows = new int[b - a];
                    for (int j = 0; j < rows.length; j++) {
                        rows[j] = a + j;
                    }
                    keep[l][h] = rows;
                    removed += t.length - (b - a);
                }
            }
            if (removed > 0) {
                keepTables(keep);
            }
        } finally {
            endWrite();
        }
    }

    /**
     * Keeps {@code keep[l][h]} rows (strictly increasing; {@code null} = table unchanged) of every table, all
     * tables or none. Leading blocks whose rows stay where they are keep their handles (and their sharing); so does
     * every later block whose kept rows form a whole new block at the same offsets (a block-aligned eviction moves
     * handles, not bytes). The other new blocks are rewritten: in place when their old block is exclusively owned
     * and not moved elsewhere, gathered into a fresh block otherwise. Whole evicted blocks are released without
     * being read. A pure truncation writes nothing. Write lock held; {@code keep} validated.
     */
    private void keepTables(int[][][] keep) {
        requireWrite();
        FreshBlocks fresh = null;
        int[][][][] plans;
        for (int attempt = 1; ; attempt++) {
            plans = new int[tables.length][][][];
            long[] need = planKeep(keep, plans);
            if (fresh != null) {
                if (need[0] <= fresh.keyCount() && need[1] <= fresh.valueCount()) {
                    break;   // the plan still fits the blocks allocated for it
                }
                fresh.releaseUnused(allocator);   // sharing changed under a pressure handler
            }
            fresh = tryAllocate(need[0], need[1], attempt);
        }
        for (int l = 0; l < tables.length; l++) {
            for (int h = 0; h < tables[l].length; h++) {
                int[] rows = keep[l][h];
                if (rows == null) {
                    continue;
                }
                BlockTable t = tables[l][h];
                int m = rows.length;
                int k = identityPrefix(rows);
                int newCount = blocksFor(m);
                if (k < m) {
                    lowerPristine(k);   // row k onwards now hold other rows than appended there
                }
                if (k == m) {
                    allocator.releaseAll(t.keyBlocks, newCount, t.blockCount);
                    allocator.releaseAll(t.valueBlocks, newCount, t.blockCount);
                } else {
                    int untouched = k / tokensPerBlock;
                    rewriteRegion(t.keyBlocks, t.blockCount, rows, untouched, plans[l][h][0], fresh, true);
                    rewriteRegion(t.valueBlocks, t.blockCount, rows, untouched, plans[l][h][1], fresh, false);
                    for (int j = k; j < m; j++) {
                        t.positions[j] = t.positions[rows[j]];
                    }
                }
                referenced(-2L * (t.blockCount - newCount));
                t.length = m;
                t.blockCount = newCount;
                t.trim();
            }
        }
        fresh.releaseUnused(allocator);
        modCount++;
    }

    /**
     * Plan of one new block: taken over from an old one as is ({@code >= 0}: the old block's index), rewritten in
     * its own old block ({@link #IN_PLACE}), gathered into a fresh block ({@link #GATHER}), or rewritten into an
     * earlier old block that is exclusively owned, no longer read and used by nothing else ({@code RECYCLE - e},
     * i.e. {@code <= RECYCLE}, for old block e).
     */
    private static final int IN_PLACE = -1;
    private static final int GATHER = -2;
    private static final int RECYCLE = -3;

    /**
     * Plans every kept table's K and V region into {@code plans[l][h][0 | 1]} (see {@link #planRegion}); returns
     * the fresh K and V blocks the plans gather into ({@code {keys, values}}).
     */
    private long[] planKeep(int[][][] keep, int[][][][] plans) {
        long[] need = new long[2];
        for (int l = 0; l < tables.length; l++) {
            plans[l] = new int[tables[l].length][][];
            for (int h = 0; h < tables[l].length; h++) {
                int[] rows = keep[l][h];
                if (rows == null) {
                    continue;
                }
                BlockTable t = tables[l][h];
                int k = identityPrefix(rows);
                if (k == rows.length) {
                    continue;   // truncation
                }
                int untouched = k / tokensPerBlock;
                int[] pk = planRegion(t.keyBlocks, t.blockCount, rows, untouched);
                int[] pv = planRegion(t.valueBlocks, t.blockCount, rows, untouched);
                plans[l][h] = new int[][] {pk, pv};
                for (int d = 0; d < pk.length; d++) {
                    need[0] += pk[d] == GATHER ? 1 : 0;
                    need[1] += pv[d] == GATHER ? 1 : 0;
                }
            }
        }
        return need;
    }

    /**
     * For each new block d in {@code [untouched, blocksFor(rows.length))} of one K or V table: the index of the
     * old block it takes over unchanged, when its kept rows are exactly that block's leading rows (same offsets);
     * else {@link #IN_PLACE} when old block d is exclusively owned and not taken over by an earlier new block
     * (rows only move forward, {@code rows[j] >= j}, so writing new row j over old row j never overwrites a row
     * still to be read, and a taken-over block s always has {@code s >= d}); else an earlier old block e < d that
     * nothing took ({@code RECYCLE - e}: its rows are all below {@code d * tokensPerBlock <= rows[j]}, never read
     * again); else {@link #GATHER} into a fresh block. Old blocks d' <= d number one more than the new blocks
     * before d, so when old block d is taken, an earlier one is free: an exclusively owned table needs no fresh
     * block at all, as before block takeover existed.
     */
    private int[] planRegion(long[] blocks, int count, int[] rows, int untouched) {
        int tpb = tokensPerBlock;
        int m = rows.length;
        int newCount = blocksFor(m);
        int[] plan = new int[newCount - untouched];
        boolean[] takenOver = new boolean[count];
        int[] free = new int[plan.length];   // old blocks before d that nothing uses and only this table owns
        int freeCount = 0;
        for (int d = untouched; d < newCount; d++) {
            int first = d * tpb;
            int n = Math.min(tpb, m - first);
            int r0 = rows[first];
            boolean exclusive = allocator.refCount(blocks[d]) == 1;
            // rows ascend strictly, so first and last n - 1 apart means contiguous
            if (r0 % tpb == 0 && rows[first + n - 1] == r0 + n - 1) {
                plan[d - untouched] = r0 / tpb;
                takenOver[r0 / tpb] = true;
            } else if (!takenOver[d] && exclusive) {
                plan[d - untouched] = IN_PLACE;
            } else if (freeCount > 0) {
                plan[d - untouched] = RECYCLE - free[--freeCount];
            } else {
                plan[d - untouched] = GATHER;
            }
            if (!takenOver[d] && plan[d - untouched] != IN_PLACE && exclusive) {
                free[freeCount++] = d;   // read by no later new block, taken over by none
            }
        }
        return plan;
    }

    /**
     * Rebuilds blocks {@code [untouched, count)} of one K or V table by {@code plan} (see {@link #planRegion}) so
     * that new row j holds old row rows[j]; releases the old blocks no new block uses; gathers into blocks of
     * {@code fresh} of the region's side ({@code keys}).
     */
    private void rewriteRegion(long[] blocks, int count, int[] rows, int untouched, int[] plan, FreshBlocks fresh,
                               boolean keys) {
        int tpb = tokensPerBlock;
        long rowBytes = keys ? keyRowBytes : valueRowBytes;
        int m = rows.length;
        int newCount = untouched + plan.length;
        long[] old = Arrays.copyOf(blocks, count);
        boolean[] kept = new boolean[count];
        MemorySegment[] src = null;
        for (int d = untouched; d < newCount; d++) {
            int p = plan[d - untouched];
            if (p >= 0) {
                blocks[d] = old[p];
                kept[p] = true;
                continue;
            }
            if (src == null) {
                src = new MemorySegment[count];
            }
            MemorySegment dst;
            if (p == IN_PLACE) {
                kept[d] = true;
                dst = segment(src, old, d);
            } else if (p <= RECYCLE) {
                int e = RECYCLE - p;
                kept[e] = true;
                blocks[d] = old[e];
                dst = segment(src, old, e);
            } else {
                blocks[d] = fresh.take(keys);
                dst = allocator.segment(blocks[d]);
            }
            int end = Math.min(m, (d + 1) * tpb);
            for (int j = d * tpb; j < end; j++) {
                int r = rows[j];
                if (p != IN_PLACE || r != j) {
                    MemorySegment.copy(segment(src, old, r / tpb), (long) (r % tpb) * rowBytes, dst,
                            (long) (j % tpb) * rowBytes, rowBytes);
                }
            }
        }
        for (int b = untouched; b < count; b++) {
            if (!kept[b]) {
                allocator.release(old[b]);
            }
        }
    }

    /** The segment of old block b, looked up once per rewrite. */
    private MemorySegment segment(MemorySegment[] cache, long[] old, int b) {
        MemorySegment s = cache[b];
        if (s == null) {
            s = allocator.segment(old[b]);
            cache[b] = s;
        }
        return s;
    }

    private static int identityPrefix(int[] rows) {
        int k = 0;
        while (k < rows.length && rows[k] == k) {
            k++;
        }
        return k;
    }

    private int sharedBlocks(long[] blocks, int from, int to) {
        int n = 0;
        for (int b = from; b < to; b++) {
            n += allocator.refCount(blocks[b]) > 1 ? 1 : 0;
        }
        return n;
    }

    // ================================================================ shift

    /**
     * Adds {@code delta} to the position of every row whose position lies in {@code [from, to)}, in every
     * (layer, KV head) (like {@code llama_memory_seq_add}); with a {@link RopeRotation}, re-rotates the stored keys
     * of those rows by {@code delta} positions. Shared key blocks are copied before they are rotated.
     */
    public void shiftPositions(long from, long to, long delta, RopeRotation rope) {
        checkRange(from, to);
        beginWrite();
        try {
            int dim = layout.headDim();
            if (rope != null) {
                rope.dims(dim);
            }
            if (delta == 0) {
                return;
            }
            int layers = tables.length;
            int kvHeads = layout.kvHeads();
            int[][] first = new int[layers][kvHeads];
            int[][] end = new int[layers][kvHeads];
            float[][][] rotated = new float[layers][kvHeads][];
            boolean any = false;
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    BlockTable t = tables[l][h];
                    int a = t.lowerBound(from);
                    int b = t.lowerBound(to);
                    first[l][h] = a;
                    end[l][h] = b;
                    if (a == b) {
                        continue;
                    }
                    any = true;
                    checkShift(t, a, b, delta, l, h);
                    if (rope != null) {
                        rotated[l][h] = rotatedKeys(t, a, b, delta, rope);
                        RowCodec.checkValues("re-rotated key of layer " + l + ", KV head " + h, rotated[l][h], 0,
                                rotated[l][h].length, layout.keyDtype());
                    }
                }
            }
            if (!any) {
                return;
            }
            FreshBlocks fresh;
            for (int attempt = 1; ; attempt++) {   // counted again after a pressure handler changed sharing
                long need = 0;
                for (int l = 0; l < layers; l++) {
                    for (int h = 0; h < kvHeads; h++) {
                        if (rotated[l][h] != null) {
                            need += sharedBlocks(tables[l][h].keyBlocks, first[l][h] / tokensPerBlock,
                                    (end[l][h] - 1) / tokensPerBlock + 1);
                        }
                    }
                }
                fresh = tryAllocate(need, 0, attempt);
                if (fresh != null) {
                    break;
                }
            }
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    BlockTable t = tables[l][h];
                    int a = first[l][h];
                    int b = end[l][h];
                    if (a == b) {
                        continue;
                    }
                    if (rotated[l][h] != null) {
                        for (int blk = a / tokensPerBlock; blk <= (b - 1) / tokensPerBlock; blk++) {
                            if (allocator.refCount(t.keyBlocks[blk]) > 1) {
                                int rowsHere = Math.min(tokensPerBlock, t.length - blk * tokensPerBlock);
                                long copy = fresh.take(true);
                                MemorySegment.copy(allocator.segment(t.keyBlocks[blk]), 0, allocator.segment(copy),
                                        0, rowsHere * keyRowBytes);
                                allocator.release(t.keyBlocks[blk]);
                                t.keyBlocks[blk] = copy;
                            }
                        }
                        writeKeys(t, a, b, rotated[l][h]);
                    }
                    lowerPristine(a);   // moved (and maybe re-rotated) rows are no longer a fresh prefill's
                    for (int r = a; r < b; r++) {
                        t.positions[r] += delta;
                    }
                }
            }
            fresh.releaseUnused(allocator);   // a sibling dropped its reference after we counted: nothing to copy
            modCount++;
        } finally {
            endWrite();
        }
    }

    private static void checkShift(BlockTable t, int a, int b, long delta, int l, int h) {
        long lo;
        long hi;
        try {
            lo = Math.addExact(t.positions[a], delta);
            hi = Math.addExact(t.positions[b - 1], delta);
        } catch (ArithmeticException e) {
            throw new KvArgumentException("shifting positions by " + delta + " overflows a long in layer " + l
                    + ", KV head " + h);
        }
        if (lo < 0 || hi == Long.MAX_VALUE) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + t.positions[lo < 0 ? a : b - 1]
                    + " to " + (lo < 0 ? lo : hi) + " in layer " + l + ", KV head " + h
                    + "; positions must stay in [0, Long.MAX_VALUE) (Sequence.END is excluded)");
        }
        if (a > 0 && t.positions[a - 1] >= lo) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + t.positions[a] + " to " + lo
                    + ", not above the unshifted position " + t.positions[a - 1] + " before it (layer " + l
                    + ", KV head " + h + "); positions must stay strictly increasing: remove the overlap first");
        }
        if (b < t.length && hi >= t.positions[b]) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + t.positions[b - 1] + " to "
                    + hi + ", not below the unshifted position " + t.positions[b] + " after it (layer " + l
                    + ", KV head " + h + "); positions must stay strictly increasing: remove the overlap first");
        }
    }

    private float[] rotatedKeys(BlockTable t, int a, int b, long delta, RopeRotation rope) {
        int dim = layout.headDim();
        float[] out = new float[Math.multiplyExact(b - a, dim)];
        for (int r = a; r < b; r++) {
            MemorySegment seg = allocator.segment(t.keyBlocks[r / tokensPerBlock]);
            RowCodec.read(seg, (r % tokensPerBlock) * keyRowBytes, out, (r - a) * dim, dim, layout.keyDtype());
            rope.rotate(out, (r - a) * dim, dim, delta);
        }
        return out;
    }

    private void writeKeys(BlockTable t, int a, int b, float[] keys) {
        int dim = layout.headDim();
        for (int r = a; r < b; r++) {
            MemorySegment seg = allocator.segment(t.keyBlocks[r / tokensPerBlock]);
            RowCodec.write(keys, (r - a) * dim, seg, (r % tokensPerBlock) * keyRowBytes, dim, layout.keyDtype());
        }
    }

    // ================================================================ fork / close

    /**
     * New tables sharing every block of these (one more reference each; no data copied). Either side may append
     * afterwards: a shared partial tail block is copied on first write.
     */
    public SequenceTables fork(long childId) {
        beginRead();
        try {
            SequenceTables child = new SequenceTables(this, childId);
            int done = 0;
            long[][] all = new long[2 * tables.length * tables[0].length][];
            int[] counts = new int[all.length];
            for (BlockTable[] layer : tables) {
                for (BlockTable t : layer) {
                    all[done] = t.keyBlocks;
                    counts[done++] = t.blockCount;
                    all[done] = t.valueBlocks;
                    counts[done++] = t.blockCount;
                }
            }
            allocator.addReferences(all, counts);
            return child;
        } finally {
            endRead();
        }
    }

    /**
     * Releases every block. Waits for readers of this sequence (a decode running on another thread finishes
     * first). Returns whether this call closed it (false if it was closed already). Idempotent.
     */
    public boolean close() {
        if (closed) {
            return false;
        }
        try {
            beginWrite();
        } catch (ClosedException e) {
            closed = true;
            return false;
        }
        try {
            releaseAllTables();
            referencedBlocks = 0;
            closed = true;
            modCount++;
            host.closed(id);
            return true;
        } finally {
            endWrite();
        }
    }

    /**
     * Swap-out, table side. Under this sequence's write lock (held throughout): captures a raw image of every
     * table and hands it to {@code save}, which writes it elsewhere (a tier); if {@code save} returns normally,
     * every block reference is released and the sequence is closed, so nothing can change between the image and
     * the release. Blocks a fork or a prefix cache still references stay live. If {@code save} throws, the
     * sequence is unchanged.
     */
    public <T> T swapOut(java.util.function.Function<SwapImage, T> save) {
        if (save == null) {
            throw new KvArgumentException("save must not be null");
        }
        beginWrite();
        try {
            SwapImage image = SwapImage.capture(this);
            T result;
            try {
                result = save.apply(image);
            } finally {
                image.expire();
            }
            releaseAllTables();
            referencedBlocks = 0;
            closed = true;
            modCount++;
            host.closed(id);
            return result;
        } finally {
            endWrite();
        }
    }

    private void releaseAllTables() {
        for (BlockTable[] layer : tables) {
            for (BlockTable t : layer) {
                allocator.releaseAll(t.keyBlocks, 0, t.blockCount);
                allocator.releaseAll(t.valueBlocks, 0, t.blockCount);
                t.blockCount = 0;
                t.length = 0;
            }
        }
    }

    /** The store freed every block (store close, which holds the exclusive lock). Refused while the store is open. */
    public void markClosedByStore() {
        if (!store.isClosed()) {
            throw new KvSlabException("only a closed store marks its sequences closed; close the sequence instead");
        }
        closed = true;
    }

    // ================================================================ reads

    public int length(int layer, int kvHead) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            return tables[layer][kvHead].length;
        } finally {
            endRead();
        }
    }

    public long[] positions(int layer, int kvHead) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            BlockTable t = tables[layer][kvHead];
            return Arrays.copyOf(t.positions, t.length);
        } finally {
            endRead();
        }
    }

    public int blockCount(int layer, int kvHead) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            return tables[layer][kvHead].blockCount;
        } finally {
            endRead();
        }
    }

    /** Dequantized K ({@code keys}) or V rows of one (layer, KV head) into {@code dst[0 .. length*headDim)}. */
    public void readRows(int layer, int kvHead, float[] dst, boolean keys) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            BlockTable t = tables[layer][kvHead];
            int dim = layout.headDim();
            long need = (long) t.length * dim;
            if (dst == null || dst.length < need) {
                throw new KvArgumentException("dst must hold length x headDim = " + need + " floats, got "
                        + (dst == null ? "null" : dst.length));
            }
            long[] blocks = keys ? t.keyBlocks : t.valueBlocks;
            for (int b = 0; b < t.blockCount; b++) {
                MemorySegment seg = allocator.segment(blocks[b]);
                int rowsHere = Math.min(tokensPerBlock, t.length - b * tokensPerBlock);
                RowCodec.readRows(seg, 0, dst, b * tokensPerBlock * dim, rowsHere, dim, layout.dtype(keys));
            }
        } finally {
            endRead();
        }
    }

    /**
     * Opaque identities of the K ({@code keys}) or V blocks of one (layer, KV head), in table order: equal values
     * name the same physical block (shared by forks, a prefix cache, or across layers). Not block handles: no
     * public method accepts them.
     */
    public long[] blockIds(int layer, int kvHead, boolean keys) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            BlockTable t = tables[layer][kvHead];
            long[] ids = new long[t.blockCount];
            long[] blocks = keys ? t.keyBlocks : t.valueBlocks;
            for (int b = 0; b < ids.length; b++) {
                ids[b] = SlabAllocator.blockId(blocks[b]);
            }
            return ids;
        } finally {
            endRead();
        }
    }

    /** Copies the first {@code rows} raw rows of one block into {@code dst[off ..)} (stored dtype). */
    public void readRawRows(int layer, int kvHead, boolean keys, int block, int rows, byte[] dst, int off) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            BlockTable t = tables[layer][kvHead];
            if (block < 0 || block >= t.blockCount) {
                throw new KvArgumentException("block must be in [0, " + t.blockCount + ") for layer " + layer
                        + ", KV head " + kvHead + ", got " + block);
            }
            int stored = Math.min(tokensPerBlock, t.length - block * tokensPerBlock);
            if (rows < 1 || rows > stored) {
                throw new KvArgumentException("rows must be in [1, " + stored + "] for block " + block
                        + " of layer " + layer + ", KV head " + kvHead + ", got " + rows);
            }
            long bytes = rows * layout.rowBytes(keys);
            if (dst == null || off < 0 || off + bytes > dst.length) {
                throw new KvArgumentException("dst must hold " + bytes + " bytes from offset " + off + ", got "
                        + (dst == null ? "null" : dst.length + " bytes"));
            }
            MemorySegment seg = allocator.segment(keys ? t.keyBlocks[block] : t.valueBlocks[block]);
            MemorySegment.copy(seg, 0, MemorySegment.ofArray(dst), off, bytes);
        } finally {
            endRead();
        }
    }

    private void lowerPristine(int row) {
        if (row < pristineRows) {
            pristineRows = row;
        }
    }

    /**
     * Leading rows that are exactly what a fresh prefill of the same tokens stores: rows at positions equal to
     * their index, appended and never since compressed, evicted, shifted, re-rotated or PoD-aliased.
     */
    public int publishableRows() {
        beginRead();
        try {
            return Math.min(pristineRows, denseRows());
        } finally {
            endRead();
        }
    }

    /**
     * Copies full block {@code block} of every (layer, KV head), K rows then V rows per table, tables layer-major
     * (the layout of an all-tables K-and-V block record), into {@code dst}, if the block lies within
     * {@link #publishableRows()}; returns false (copying nothing) otherwise. One read lock for the check and copy.
     */
    public boolean readPublishableColumn(int block, byte[] dst) {
        beginRead();
        try {
            long end = (long) (block + 1) * tokensPerBlock;
            if (block < 0 || end > Math.min(pristineRows, denseRows())) {
                return false;
            }
            long keyPart = layout.keyBlockBytes();
            long valuePart = layout.valueBlockBytes();
            long need = Math.multiplyExact((long) layout.layers() * layout.kvHeads(), keyPart + valuePart);
            if (dst == null || dst.length != need) {
                throw new KvArgumentException("dst must hold exactly " + need + " bytes");
            }
            MemorySegment out = MemorySegment.ofArray(dst);
            long off = 0;
            for (BlockTable[] layer : tables) {
                for (BlockTable t : layer) {
                    MemorySegment.copy(allocator.segment(t.keyBlocks[block]), 0, out, off, keyPart);
                    MemorySegment.copy(allocator.segment(t.valueBlocks[block]), 0, out, off + keyPart, valuePart);
                    off += keyPart + valuePart;
                }
            }
            return true;
        } finally {
            endRead();
        }
    }

    /** Rows from 0 on that every (layer, KV head) holds at the position equal to the row index. Lock held. */
    int denseRows() {
        requireRead();
        int dense = Integer.MAX_VALUE;
        for (BlockTable[] layer : tables) {
            for (BlockTable t : layer) {
                int r = 0;
                while (r < t.length && r < dense && t.positions[r] == r) {
                    r++;
                }
                dense = Math.min(dense, r);
            }
        }
        return dense == Integer.MAX_VALUE ? 0 : dense;
    }

    /**
     * Memory view: referenced, exclusive (reference count 1) and peak blocks, rows and the longest table, rows
     * evicted. Read without this sequence's lock (values may be a step old under a concurrent writer): only Java
     * arrays and {@link SlabAllocator#refCountIfLive} are read, so a race cannot fault.
     */
    public TableStats stats() {
        long exclusiveKeys = 0;
        long exclusiveValues = 0;
        long rows = 0;
        int maxRows = 0;
        for (BlockTable[] layer : tables) {
            for (BlockTable t : layer) {
                int length = t.length;
                int count = t.blockCount;
                long[] keys = t.keyBlocks;
                long[] values = t.valueBlocks;
                rows += length;
                maxRows = Math.max(maxRows, length);
                for (int b = 0; b < Math.min(count, Math.min(keys.length, values.length)); b++) {
                    exclusiveKeys += allocator.refCountIfLive(keys[b]) == 1 ? 1 : 0;
                    exclusiveValues += allocator.refCountIfLive(values[b]) == 1 ? 1 : 0;
                }
            }
        }
        return new TableStats(referencedBlocks, exclusiveKeys + exclusiveValues, peakReferencedBlocks, rows, maxRows,
                rowsEvicted, exclusiveKeys * layout.keyBlockBytes() + exclusiveValues * layout.valueBlockBytes());
    }

    /**
     * Blocks an append of {@code tokens} more rows to every (layer, KV head) would allocate now: new tail blocks
     * (K and V) past each table's last block, plus a private copy of each shared partial tail block (a fork's or
     * an alias's; cached prefix blocks are full). The same count {@code append} reserves, summed over all layers.
     */
    public long blocksToAppend(int tokens) {
        if (tokens < 0) {
            throw new KvArgumentException("tokens must be >= 0, got " + tokens);
        }
        beginRead();
        try {
            long blocks = 0;
            for (BlockTable[] layer : tables) {
                for (BlockTable t : layer) {
                    if (tokens == 0) {
                        continue;
                    }
                    blocks += 2L * Math.max(0, blocksFor((int) Math.min(Integer.MAX_VALUE,
                            (long) t.length + tokens)) - t.blockCount);
                    if (t.length % tokensPerBlock != 0) {
                        blocks += allocator.refCount(t.keyBlocks[t.blockCount - 1]) > 1 ? 1 : 0;
                        blocks += allocator.refCount(t.valueBlocks[t.blockCount - 1]) > 1 ? 1 : 0;
                    }
                }
            }
            return blocks;
        } finally {
            endRead();
        }
    }

    /** Blocks this sequence references (shared blocks count in every sequence naming them). */
    public long referencedBlocks() {
        return referencedBlocks;
    }

    // ================================================================ cross-layer key sharing (PoD)

    /** See {@code Sequence.aliasKeyBlock}. */
    public boolean aliasKeyBlock(int layer, int kvHead, int block, int baseLayer) {
        checkHead(layer, kvHead);
        checkHead(baseLayer, kvHead);
        checkBase(layer, baseLayer);
        beginWrite();
        try {
            BlockTable t = tables[layer][kvHead];
            BlockTable base = tables[baseLayer][kvHead];
            checkAliasable(t, base, layer, kvHead, block, baseLayer);
            return replaceKey(t, base, block);
        } finally {
            endWrite();
        }
    }

    /** See {@code Sequence.shareDistantKeys}. */
    public int shareDistantKeys(int layer, int kvHead, int baseLayer, int sinks, int recent, long queryPosition) {
        checkHead(layer, kvHead);
        checkHead(baseLayer, kvHead);
        checkBase(layer, baseLayer);
        if (sinks < 0 || recent < 1) {
            throw new KeySharingException("sinks must be >= 0 and recent >= 1 (the query's own token is always "
                    + "proximal), got sinks " + sinks + " and recent " + recent);
        }
        if (queryPosition < 0) {
            throw new KeySharingException("queryPosition must be >= 0, got " + queryPosition);
        }
        beginWrite();
        try {
            BlockTable t = tables[layer][kvHead];
            BlockTable base = tables[baseLayer][kvHead];
            int[] range = distantBlocks(t, sinks, recent, queryPosition);
            for (int b = range[0]; b < range[1]; b++) {   // validate every candidate first: all or nothing
                if (t.keyBlocks[b] != keyAt(base, b)) {
                    checkAliasable(t, base, layer, kvHead, b, baseLayer);
                }
            }
            int aliased = 0;
            for (int b = range[0]; b < range[1]; b++) {
                aliased += replaceKey(t, base, b) ? 1 : 0;
            }
            return aliased;
        } finally {
            endWrite();
        }
    }

    /** The lowest layer whose K table names the same block at that index ({@code layer} if not an alias). */
    public int keyBlockBaseLayer(int layer, int kvHead, int block) {
        checkHead(layer, kvHead);
        beginRead();
        try {
            BlockTable t = tables[layer][kvHead];
            checkBlock(t, layer, kvHead, block);
            return baseLayerOf(layer, kvHead, block);
        } finally {
            endRead();
        }
    }

    /** Read lock held. */
    int baseLayerOf(int layer, int kvHead, int block) {
        long handle = tables[layer][kvHead].keyBlocks[block];
        for (int a = 0; a < layer; a++) {
            if (keyAt(tables[a][kvHead], block) == handle) {
                return a;
            }
        }
        return layer;
    }

    private int[] distantBlocks(BlockTable t, int sinks, int recent, long q) {
        int tpb = tokensPerBlock;
        long lastDistant = q - recent;   // recent >= 1 and q >= 0, so no overflow
        int firstRow = t.lowerBound(sinks);
        int endRow = t.lowerBound(lastDistant + 1);   // rows [firstRow, endRow) are distant
        if (lastDistant < sinks || endRow <= firstRow) {
            return new int[] {0, 0};
        }
        int from = (firstRow + tpb - 1) / tpb;
        int to = endRow / tpb;   // block b is wholly distant iff (b + 1) * tpb <= endRow; full blocks only
        return to > from ? new int[] {from, to} : new int[] {0, 0};
    }

    private static void checkBase(int layer, int baseLayer) {
        if (baseLayer >= layer) {
            throw new KeySharingException("the base layer must be below the layer whose keys it replaces: got "
                    + "base layer " + baseLayer + " for layer " + layer);
        }
    }

    private static void checkBlock(BlockTable t, int layer, int kvHead, int block) {
        if (block < 0 || block >= t.blockCount) {
            throw new KeySharingException("block must be in [0, " + t.blockCount + ") for layer " + layer
                    + ", KV head " + kvHead + ", got " + block);
        }
    }

    private void checkAliasable(BlockTable t, BlockTable base, int layer, int kvHead, int block, int baseLayer) {
        checkBlock(t, layer, kvHead, block);
        int tpb = tokensPerBlock;
        int end = (block + 1) * tpb;
        if (t.length < end) {
            throw new KeySharingException("block " + block + " of layer " + layer + ", KV head " + kvHead + " holds "
                    + (t.length - block * tpb) + " of " + tpb + " rows; only full blocks can share keys (the "
                    + "partial tail still receives appends)");
        }
        if (base.length < end) {
            throw new KeySharingException("base layer " + baseLayer + ", KV head " + kvHead + " holds "
                    + Math.max(0, base.length - block * tpb) + " of " + tpb + " rows in block " + block
                    + "; its block must be full to be shared with layer " + layer);
        }
        for (int r = block * tpb; r < end; r++) {
            if (t.positions[r] != base.positions[r]) {
                throw new KeySharingException("layer " + layer + " and base layer " + baseLayer + " hold different "
                        + "positions in block " + block + " of KV head " + kvHead + " (row " + r + ": "
                        + t.positions[r] + " vs " + base.positions[r] + "); keys can only be shared between "
                        + "tables holding the same positions (apply the same eviction to every layer of a group)");
            }
        }
    }

    private static long keyAt(BlockTable t, int block) {
        return block < t.blockCount ? t.keyBlocks[block] : 0;
    }

    /** Points t's K block at base's (add a reference first, then release the own copy). False if it already does. */
    private boolean replaceKey(BlockTable t, BlockTable base, int block) {
        long shared = base.keyBlocks[block];
        long own = t.keyBlocks[block];
        if (own == shared) {
            return false;
        }
        allocator.addReference(shared);
        allocator.release(own);
        t.keyBlocks[block] = shared;
        lowerPristine(block * tokensPerBlock);   // PoD: this block's keys are another layer's now
        modCount++;
        return true;
    }

    // ================================================================ prefix cache and restore

    /** Takes one more reference to the K and V blocks at index {@code block} of every table. Lock held. */
    void pinColumn(int block, long[] keys, long[] values) {
        requireRead();
        int kvHeads = layout.kvHeads();
        for (BlockTable[] layer : tables) {
            for (BlockTable t : layer) {
                if (block < 0 || (long) (block + 1) * tokensPerBlock > t.length) {
                    throw new KvArgumentException("block " + block + " is not a full block of every table");
                }
            }
        }
        for (int l = 0; l < tables.length; l++) {
            for (int h = 0; h < kvHeads; h++) {
                keys[l * kvHeads + h] = tables[l][h].keyBlocks[block];
                values[l * kvHeads + h] = tables[l][h].valueBlocks[block];
            }
        }
        for (int t = 0; t < keys.length; t++) {
            allocator.addReference(keys[t]);
            allocator.addReference(values[t]);
        }
    }

    /** Makes these empty tables hold the given cached columns as rows 0 .. k*tokensPerBlock - 1. Lock held. */
    void adoptColumns(List<long[][]> columns) {
        requireWrite();
        int k = columns.size();
        if (k == 0) {
            return;
        }
        int kvHeads = layout.kvHeads();
        int rows = k * tokensPerBlock;
        for (int l = 0; l < tables.length; l++) {
            for (int h = 0; h < kvHeads; h++) {
                BlockTable t = tables[l][h];
                if (t.blockCount != 0) {
                    throw new IllegalStateException("prefix adoption needs empty tables");
                }
                t.ensureBlockCapacity(k);
                t.ensureRowCapacity(rows);
                for (int i = 0; i < k; i++) {
                    long[][] c = columns.get(i);
                    allocator.addReference(c[0][l * kvHeads + h]);
                    t.keyBlocks[i] = c[0][l * kvHeads + h];
                    t.blockCount = i + 1;   // so that close() releases exactly what was referenced
                    referenced(1);
                    allocator.addReference(c[1][l * kvHeads + h]);
                    t.valueBlocks[i] = c[1][l * kvHeads + h];
                    referenced(1);
                }
                for (int r = 0; r < rows; r++) {
                    t.positions[r] = r;
                }
                t.length = rows;
            }
        }
        modCount++;
    }

    /** Replaces every table by {@code built} (references already taken), releasing the old blocks. Lock held. */
    void install(BlockTable[][] built) {
        requireWrite();
        releaseAllTables();
        long blocks = 0;
        for (int l = 0; l < built.length; l++) {
            for (int h = 0; h < built[l].length; h++) {
                tables[l][h] = built[l][h];
                blocks += 2L * built[l][h].blockCount;
            }
        }
        referencedBlocks = blocks;
        peakReferencedBlocks = Math.max(peakReferencedBlocks, blocks);
        pristineRows = 0;   // restored rows: their history (compressed? shared?) is not known here
        modCount++;
    }

    // ================================================================ checks

    int blocksFor(int rows) {
        return (int) (((long) rows + tokensPerBlock - 1) / tokensPerBlock);
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
    }

    public void checkHead(int layer, int kvHead) {
        checkLayer(layer);
        if (kvHead < 0 || kvHead >= layout.kvHeads()) {
            throw new KvArgumentException("kvHead must be in [0, " + layout.kvHeads() + "), got " + kvHead);
        }
    }

    private static void checkRange(long from, long to) {
        if (from < 0 || to < from) {
            throw new KvArgumentException("position range [" + from + ", " + to + ") is not allowed: need "
                    + "0 <= from <= to (use Sequence.END for 'to the end')");
        }
    }
}
