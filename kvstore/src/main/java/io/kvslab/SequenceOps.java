package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Whole-sequence operations in the spirit of llama.cpp's {@code llama_memory_seq_*} calls: remove a position
 * range, keep one sequence, copy a sequence (sharing blocks), shift positions (optionally re-rotating keys).
 *
 * <p>Each operation covers every (layer, KV head) of the sequence and is atomic: it validates everything and
 * reserves every block it needs before it changes anything, so a failure (bad argument, memory limit) leaves the
 * sequence and the store as they were. Shared blocks (forks, prefix cache) are never written: a table region that
 * must change is rebuilt into fresh blocks, while untouched leading blocks stay shared.
 *
 * <p>Positions follow llama.cpp's {@code [p0, p1)} convention; {@link Long#MAX_VALUE} as the end means "to the
 * end". The operations themselves live on the sequence's table owner
 * ({@code io.kvslab.internal.table.SequenceTables}); these are the public entry points.
 */
public final class SequenceOps {
    /** Use as the end of a range to mean "every position from the start on". */
    public static final long END = Long.MAX_VALUE;

    private SequenceOps() {}

    /**
     * Removes the rows whose positions lie in {@code [from, to)} from every (layer, KV head), freeing blocks that
     * empty out (like {@code llama_memory_seq_rm}). Remaining rows keep their positions; close the gap with
     * {@link #shiftPositions} if wanted. Removing a suffix copies nothing, even from shared blocks.
     *
     * @return rows removed, summed over all (layer, KV head) tables
     */
    public static long removePositions(Sequence s, long from, long to) {
        return s.tables.removePositions(from, to);
    }

    /**
     * Closes every open sequence of {@code store} except {@code keep} (like {@code llama_memory_seq_keep}). Each
     * close waits for reads of that sequence running on other threads. Blocks held by a prefix cache stay cached.
     *
     * @return the number of sequences closed
     */
    public static int keepOnly(KvStore store, Sequence keep) {
        if (store == null || keep == null) {
            throw new KvArgumentException("store and keep must not be null");
        }
        if (keep.store != store) {
            throw new KvArgumentException("sequence " + keep.id() + " belongs to another store; keepOnly needs a "
                    + "sequence of the store it prunes");
        }
        keep.checkOpen();
        int closed = 0;
        for (Sequence s : store.sequences()) {
            if (s != keep && !s.isClosed()) {
                s.close();
                closed++;
            }
        }
        return closed;
    }

    /** A new sequence sharing every block of {@code s} (no data copied; see {@link Sequence#fork()}). */
    public static Sequence copy(Sequence s) {
        return s.fork();
    }

    /**
     * A new sequence holding the rows of {@code s} whose positions lie in {@code [from, to)}, at the same
     * positions (like {@code llama_memory_seq_cp}). Shares blocks with {@code s}: a range starting at or before
     * the first position copies no data; otherwise the shifted rows are copied into fresh blocks.
     */
    public static Sequence copyPositions(Sequence s, long from, long to) {
        checkRange(from, to);
        Sequence child = s.fork();
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
     * (layer, KV head) (like {@code llama_memory_seq_add}). With a {@link RopeRotation}, the stored keys of those
     * rows are re-rotated by {@code delta} positions so that they equal keys rotated at their new positions
     * (values are not position dependent). Shared key blocks are copied before they are rotated.
     *
     * <p>Typical use, a StreamingLLM window: {@code removePositions(s, sink, sink + n)} then
     * {@code shiftPositions(s, sink + n, END, -n, rope)}.
     *
     * @param rope {@code null} to change positions only
     * @throws KvArgumentException if a shifted position would be negative, overflow, or not stay strictly between
     *                             its unshifted neighbours; or if a re-rotated key does not fit the dtype
     */
    public static void shiftPositions(Sequence s, long from, long to, long delta, RopeRotation rope) {
        s.tables.shiftPositions(from, to, delta, rope);
    }

    private static void checkRange(long from, long to) {
        if (from < 0 || to < from) {
            throw new KvArgumentException("position range [" + from + ", " + to + ") is not allowed: need "
                    + "0 <= from <= to (use SequenceOps.END for 'to the end')");
        }
    }
}
