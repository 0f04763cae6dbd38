package io.kvslab;

import io.kvslab.internal.table.RopeRotation;
import io.kvslab.internal.table.SequenceTables;
import io.kvslab.internal.table.TableAccess;
import io.kvslab.metrics.SequenceMetrics;

/**
 * The KV cache of one sequence: for every (layer, KV head) a block table of K rows, V rows and their absolute
 * positions. Lengths may differ per (layer, KV head) after head-wise eviction.
 *
 * <p>Every mutating operation validates all arguments and reserves every block it needs before it writes anything,
 * so a failure (bad argument, memory limit) leaves the sequence and the store unchanged.
 *
 * <p>Thread-safe (see {@link KvStore} for the contract): reads of a sequence (attention, row reads) run
 * concurrently; a mutation or close waits until running reads of that sequence have returned, so a close racing a
 * decode on another thread never frees memory under the kernel.
 *
 * <p>Whole-sequence operations follow llama.cpp's memory interface ({@code llama_memory_seq_rm / seq_keep /
 * seq_cp / seq_add}): {@link #removePositions}, {@link #keepPositions}, {@link #forkPositions},
 * {@link #shiftPositions}, {@link #closeOtherSequences}, plus {@link #fork()} and row eviction ({@link #keep}).
 * Position ranges are {@code [from, to)}; {@link #END} as the end means "to the end". Each covers every
 * (layer, KV head) and is atomic. Shared blocks (forks, prefix cache) are never written: a table region that must
 * change is rebuilt into fresh blocks, while untouched leading blocks stay shared.
 */
public final class Sequence implements AutoCloseable {
    /** Use as the end of a position range to mean "every position from the start on". */
    public static final long END = Long.MAX_VALUE;

    static {
        TableAccess.install(s -> s.tables);
    }

    final KvStore store;
    final KvLayout layout;
    /** The one owner of this sequence's block tables and their lifetime lock. */
    final SequenceTables tables;

    Sequence(KvStore store, SequenceTables tables) {
        this.store = store;
        this.layout = store.layout();
        this.tables = tables;
    }

    /**
     * This sequence's id: numbered from 0 in creation order, never reused within its store (the key of
     * {@link io.kvslab.metrics.StoreMetrics#sequence}). Still valid after close.
     *
     * @return the id, {@code >= 0}
     */
    public long id() {
        return tables.id();
    }

    /**
     * The store this sequence allocates from.
     *
     * @return the owning store (possibly closed)
     */
    public KvStore store() {
        return store;
    }

    /**
     * The store's KV layout: layers, KV heads, head dim, dtype and tokens per block of every table of this sequence.
     *
     * @return the layout, the same object as {@code store().layout()}
     */
    public KvLayout layout() {
        return layout;
    }

    /**
     * Whether {@link #close()} was called (or the store was closed). Any other operation on a closed sequence throws
     * {@link ClosedException}.
     *
     * @return {@code true} once closed
     */
    public boolean isClosed() {
        return tables.isClosed() || store.isClosed();
    }

    // ---------------------------------------------------------------- writes

    /**
     * Appends one token's K and V rows to every KV head of {@code layer}.
     *
     * @param k        RoPE-rotated keys, {@code float[kvHeads * headDim]} (KV head major)
     * @param v        values, same shape
     * @param position absolute position; greater than every position already stored in this layer
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     */
    public void append(int layer, float[] k, float[] v, long position) {
        tables.append(layer, k, v, 1, null, position);
    }

    /**
     * Appends {@code positions.length} tokens (a prefill chunk) to every KV head of {@code layer}.
     *
     * @param k         {@code float[n * kvHeads * headDim]}, laid out [token][kvHead][dim]
     * @param v         same shape
     * @param positions strictly increasing absolute positions, above every position stored in this layer
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     */
    public void appendChunk(int layer, float[] k, float[] v, long[] positions) {
        if (positions == null) {
            throw new KvArgumentException("positions must not be null");
        }
        tables.append(layer, k, v, positions.length, positions, 0);
    }

    /**
     * Appends one token's K and V rows to every KV head of {@code layer}, read in place from the caller's tensors
     * ({@code [1, kvHeads, headDim]}, any element type and strides, heap or native): values are checked once and
     * each row is copied once into block memory, without conversion when the tensor's type is the store's.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param k keys, {@code [1, kvHeads, headDim]}
     * @param v values, same shape as {@code k}
     * @param position absolute position; greater than every position already stored in this layer
     */
    public void append(int layer, KvTensor k, KvTensor v, long position) {
        if (k != null && k.tokens() != 1) {
            throw new KvArgumentException("append takes one token; use appendChunk for " + k.tokens());
        }
        tables.append(layer, k, v, null, position);
    }

    /**
     * Appends a chunk of tokens from the caller's tensors ({@code [tokens, kvHeads, headDim]}, for example a
     * forward pass's post-RoPE K and V in the Hugging Face layout) to every KV head of {@code layer}.
     *
     * @param positions one strictly increasing absolute position per token, above every position in this layer
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param k keys, {@code [tokens, kvHeads, headDim]}, {@code tokens = positions.length}
     * @param v values, same shape as {@code k}
     */
    public void appendChunk(int layer, KvTensor k, KvTensor v, long[] positions) {
        if (positions == null) {
            throw new KvArgumentException("positions must not be null");
        }
        tables.append(layer, k, v, positions, 0);
    }

    /**
     * A scoped read view of {@code layer}'s block memory for an engine that runs its own attention: use it in
     * try-with-resources on one thread; see {@link LayerView}. While it is open, operations that would free or move
     * this sequence's blocks wait (from another thread) or fail with a typed exception (from this one).
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @return an open view, to be closed by the caller (try-with-resources)
     */
    public LayerView readLayer(int layer) {
        return io.kvslab.internal.table.TableView.open(tables, layer);
    }

    /**
     * Keeps only the given rows of one (layer, KV head), in order, and frees the rest: kept rows are moved to the
     * front (bitwise unchanged, with their positions), emptied blocks are freed. The cost follows the rows that
     * move, not the rows kept: a block whose kept rows become a whole new block at the same offsets (a
     * block-aligned eviction) is taken over without a copy, only the blocks a gap runs through are rewritten.
     * Shared blocks are never modified: such a block that must change is rebuilt into a fresh block.
     *
     * @param rows strictly increasing row indices in {@code [0, length(layer, kvHead))}; empty frees every row
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     */
    public void keep(int layer, int kvHead, int[] rows) {
        tables.keep(layer, kvHead, rows);
    }

    /**
     * Keeps the given rows of every KV head of one layer, all or nothing: the fresh blocks every head needs (heads
     * whose table shares a block with a fork are rebuilt into fresh blocks) are reserved together before any head
     * changes, so a memory limit hit leaves the whole layer exactly as it was.
     *
     * @param rows {@code [kvHead][]}: strictly increasing row indices of each head (a head's full range keeps it
     *             unchanged)
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     */
    public void keep(int layer, int[][] rows) {
        tables.keepLayer(layer, rows);
    }

    // ---------------------------------------------------------------- position-range operations (llama.cpp seq_*)

    /**
     * Removes the rows whose positions lie in {@code [from, to)} from every (layer, KV head), freeing blocks that
     * empty out (like {@code llama_memory_seq_rm}). Remaining rows keep their positions; close the gap with
     * {@link #shiftPositions} if wanted. Removing a suffix copies nothing, even from shared blocks.
     *
     * @param from first position of the range (inclusive), {@code >= 0}
     * @param to end of the range (exclusive), {@code >= from}; {@link Sequence#END} for "to the end"
     * @return rows removed, summed over all (layer, KV head) tables
     */
    public long removePositions(long from, long to) {
        return tables.removePositions(from, to);
    }

    /**
     * Keeps only the rows whose positions lie in {@code [from, to)}, in every (layer, KV head), and frees the rest
     * (the complement of {@link #removePositions}). Kept rows keep their positions.
     *
     * @param from first position of the range (inclusive), {@code >= 0}
     * @param to end of the range (exclusive), {@code >= from}; {@link Sequence#END} for "to the end"
     */
    public void keepPositions(long from, long to) {
        tables.keepPositions(from, to);
    }

    /**
     * A new sequence holding the rows of this one whose positions lie in {@code [from, to)}, at the same positions
     * (like {@code llama_memory_seq_cp} into a fresh sequence). Shares blocks with this one: a range starting at or
     * before the first position copies no data; otherwise the shifted rows are copied into fresh blocks.
     *
     * @param from first position of the range (inclusive), {@code >= 0}
     * @param to end of the range (exclusive), {@code >= from}; {@link Sequence#END} for "to the end"
     * @return the new, open sequence; the caller closes it
     */
    public Sequence forkPositions(long from, long to) {
        if (from < 0 || to < from) {
            throw new KvArgumentException("position range [" + from + ", " + to + ") is not allowed: need "
                    + "0 <= from <= to (use Sequence.END for 'to the end')");
        }
        Sequence child = fork();
        boolean done = false;
        try {
            child.tables.keepPositions(from, to);
            done = true;
            return child;
        } finally {
            if (!done) {
                child.close();
            }
        }
    }

    /**
     * Adds {@code delta} to the position of every row whose position lies in {@code [from, to)}, in every
     * (layer, KV head) (like {@code llama_memory_seq_add}), changing positions only: the stored keys stay as they
     * were rotated (see {@link #shiftPositions(long, long, long, double, int)} to re-rotate them).
     *
     * @param from first position of the range (inclusive), {@code >= 0}
     * @param to end of the range (exclusive), {@code >= from}; {@link Sequence#END} for "to the end"
     * @param delta amount added to each position in the range (negative moves rows back)
     * @throws KvArgumentException if a shifted position would be negative, overflow, or not stay strictly between
     *                             its unshifted neighbours
     */
    public void shiftPositions(long from, long to, long delta) {
        tables.shiftPositions(from, to, delta, null);
    }

    /**
     * Adds {@code delta} to the position of every row whose position lies in {@code [from, to)}, in every
     * (layer, KV head), and re-rotates the stored keys of those rows by {@code delta} positions with rotary position
     * embeddings so that they equal keys rotated at their new positions (values are not position dependent).
     * Shared key blocks are copied before they are rotated.
     *
     * <p><b>Convention: adjacent pairs</b> (llama2.c, Meta's reference Llama, GGML's "normal" mode): elements
     * {@code (2i, 2i+1)} of a key, {@code i < rotaryDims / 2}, form one pair rotated by the angle
     * {@code delta * ropeTheta^(-2i / rotaryDims)}; elements from {@code rotaryDims} on are not rotated (partial
     * rotary embeddings). The half-split ("NeoX") pairing {@code (i, i + d/2)} is not supported; models that use it
     * need their keys permuted to this convention first.
     *
     * <p>Typical use, a StreamingLLM window: {@code s.removePositions(sink, sink + n)} then
     * {@code s.shiftPositions(sink + n, Sequence.END, -n, 10000, 0)}.
     *
     * @param from first position of the range (inclusive), {@code >= 0}
     * @param to end of the range (exclusive), {@code >= from}; {@link Sequence#END} for "to the end"
     * @param delta amount added to each position in the range (negative moves rows back)
     * @param ropeTheta RoPE base frequency, finite and {@code > 0} (Llama 2: 10000; Llama 3: 500000)
     * @param rotaryDims rotated elements per head, even and {@code <= headDim}; {@code 0} means the whole head
     * @throws KvArgumentException if theta or rotaryDims is out of range, a shifted position would be negative,
     *                             overflow, or not stay strictly between its unshifted neighbours; or if a re-rotated
     *                             key does not fit the dtype
     */
    public void shiftPositions(long from, long to, long delta, double ropeTheta, int rotaryDims) {
        tables.shiftPositions(from, to, delta, new RopeRotation(ropeTheta, rotaryDims));
    }

    /**
     * Closes every other open sequence of this sequence's store (like {@code llama_memory_seq_keep}). Each close
     * waits for reads of that sequence running on other threads. Blocks held by a prefix cache stay cached.
     *
     * @return the number of sequences closed
     */
    public int closeOtherSequences() {
        checkOpen();
        int closed = 0;
        for (Sequence s : store.sequences()) {
            if (s != this && !s.isClosed()) {
                s.close();
                closed++;
            }
        }
        return closed;
    }

    /**
     * A new sequence sharing every block of this one (reference counted; no data is copied). Either sequence may
     * append afterwards: a shared partial tail block is copied on first write.
     *
     * @return the new, open sequence; the caller closes it (the store's close reports it as leaked otherwise)
     */
    public Sequence fork() {
        return store.fork(this);
    }

    /**
     * Releases every block of this sequence. Waits until reads of it running on other threads (a decode) have
     * returned. Idempotent; a no-op after the store was closed.
     */
    @Override
    public void close() {
        tables.close();
    }

    /**
     * Swaps this sequence out to {@code tier} under memory pressure (vLLM's preemption by swapping): every
     * distinct block is written to verified records (docs/tiers.md), then this sequence is closed and its
     * block references released; blocks a fork or a prefix cache still references stay in memory for them. The
     * whole operation holds this sequence's write lock, so nothing changes between the write and the release.
     * {@link KvStore#swapIn} rebuilds it bitwise (rows, positions, ragged lengths after compression, shared PoD
     * keys).
     *
     * @param tier where the blocks go; must not be null
     * @return the handle to swap it back in with, or to {@link io.kvslab.tier.SwappedSequence#close()} (removes
     *     the records) when the caller recomputes instead
     * @throws io.kvslab.tier.TierRecordException with reason {@code DECLINED} if the tier declined a record, or
     *     {@code NON_FINITE_VALUE} if this sequence holds a NaN or infinity (swap-in would refuse it; append refuses
     *     them, but a caller writing its buffer during the append can get one in): the records written are removed
     *     and this sequence is unchanged
     */
    public io.kvslab.tier.SwappedSequence swapOut(io.kvslab.tier.BlockTier tier) {
        return io.kvslab.internal.tier.Swap.swapOut(this, tier);
    }

    // ---------------------------------------------------------------- reads

    /**
     * Rows stored for one (layer, KV head).
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @return the number of rows, {@code >= 0}
     */
    public int length(int layer, int kvHead) {
        return tables.length(layer, kvHead);
    }

    /**
     * Absolute positions of the rows of one (layer, KV head), ascending (a copy).
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @return a new array of {@code length(layer, kvHead)} positions
     */
    public long[] positions(int layer, int kvHead) {
        return tables.positions(layer, kvHead);
    }

    /**
     * Dequantized K rows of one (layer, KV head) into {@code dst[0 .. length*headDim)}.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param dst receives {@code length(layer, kvHead) * headDim} floats, row after row; must be at least that long
     */
    public void readKeys(int layer, int kvHead, float[] dst) {
        tables.readRows(layer, kvHead, dst, true);
    }

    /**
     * Dequantized V rows of one (layer, KV head) into {@code dst[0 .. length*headDim)}.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param dst receives {@code length(layer, kvHead) * headDim} floats, row after row; must be at least that long
     */
    public void readValues(int layer, int kvHead, float[] dst) {
        tables.readRows(layer, kvHead, dst, false);
    }

    /**
     * Memory view of this sequence (referenced, exclusive, shared and peak bytes; rows; rows evicted).
     *
     * @return a point-in-time snapshot; does not change afterwards
     */
    public SequenceMetrics metrics() {
        checkOpen();
        return MetricsCollector.sequence(this);
    }

    /**
     * Bytes of all blocks this sequence references (blocks shared with a fork count in both).
     *
     * @return bytes, a multiple of the layout's block size
     */
    public long referencedBytes() {
        return tables.referencedBlocks() / 2 * layout.blockPairBytes();   // as many K blocks as V blocks
    }

    /**
     * Blocks in the table of one (layer, KV head); the last one may be partly filled.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @return the number of K blocks (equal to the number of V blocks), {@code >= 0}
     */
    public int blockCount(int layer, int kvHead) {
        return tables.blockCount(layer, kvHead);
    }

    void checkOpen() {
        if (tables.isClosed()) {
            throw new ClosedException("sequence " + id());
        }
        store.checkOpen();
    }

    // ---------------------------------------------------------------- cross-layer key sharing (PoD)

    /**
     * Replaces K block {@code block} of (layer, kvHead) by an alias of the K block at the same index of
     * {@code baseLayer}'s table for the same KV head (PoD, arXiv 2412.02252: one more reference to it); this
     * table's own copy is released, so its bytes are freed unless a fork still references it. Values are untouched.
     * An alias is a second reference to the base block: every operation that writes a block with more than one
     * reference copies it first, so writing through one table never changes another.
     *
     * @param baseLayer a layer below {@code layer}; its block must be full and hold the same positions
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param block block index in the (layer, KV head) table, in {@code [0, blockCount(layer, kvHead))}
     * @return whether the table changed (false if the block already was that alias)
     * @throws KvArgumentException if the base layer is not below, a block is not full, or positions differ
     */
    public boolean aliasKeyBlock(int layer, int kvHead, int block, int baseLayer) {
        return tables.aliasKeyBlock(layer, kvHead, block, baseLayer);
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
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param baseLayer the layer whose keys replace this layer's distant keys; below {@code layer}
     * @param queryPosition position of the query the distant/proximal split is computed for, {@code >= 0}
     * @return K blocks newly aliased (each one an own copy released)
     * @throws KvArgumentException as {@link #aliasKeyBlock}, or for negative sinks / non-positive recent
     */
    public int shareDistantKeys(int layer, int kvHead, int baseLayer, int sinks, int recent, long queryPosition) {
        return tables.shareDistantKeys(layer, kvHead, baseLayer, sinks, recent, queryPosition);
    }

    /**
     * The layer whose own K block block {@code block} of (layer, kvHead) is: the lowest layer whose table names the
     * same block at that index, or {@code layer} itself when the block is not an alias.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param block block index in the (layer, KV head) table, in {@code [0, blockCount(layer, kvHead))}
     * @return a layer index {@code <= layer}
     */
    public int keyBlockBaseLayer(int layer, int kvHead, int block) {
        return tables.keyBlockBaseLayer(layer, kvHead, block);
    }

    /**
     * Whether K block {@code block} of (layer, kvHead) is an alias of a lower layer's block.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param kvHead KV head index, in {@code [0, kvHeads)} of the store's layout
     * @param block block index in the (layer, KV head) table, in {@code [0, blockCount(layer, kvHead))}
     * @return {@code true} if the block is shared with a lower layer's table
     */
    public boolean isKeyBlockAliased(int layer, int kvHead, int block) {
        return keyBlockBaseLayer(layer, kvHead, block) != layer;
    }
}
