package io.kvslab;

import io.kvslab.KvArgumentException;
import io.kvslab.internal.table.SlabAllocator;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.ReentrantReadWriteLock;

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
 * end". The same one-writer rule as for {@link Sequence} applies.
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
        checkRange(from, to);
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            HeadRows[][] heads = s.heads;
            int[][][] keep = new int[heads.length][][];
            long removed = 0;
            for (int l = 0; l < heads.length; l++) {
                keep[l] = new int[heads[l].length][];
                for (int h = 0; h < heads[l].length; h++) {
                    HeadRows hr = heads[l][h];
                    int a = lowerBound(hr, from);
                    int b = lowerBound(hr, to);
                    if (a == b) {
                        continue;
                    }
                    int[] rows = new int[hr.length - (b - a)];
                    for (int j = 0; j < a; j++) {
                        rows[j] = j;
                    }
                    for (int j = b; j < hr.length; j++) {
                        rows[a + j - b] = j;
                    }
                    keep[l][h] = rows;
                    removed += b - a;
                }
            }
            if (removed > 0) {
                retainTables(s, keep);
                s.store.rowsRemoved.add(removed);
            }
            return removed;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Closes every open sequence of {@code store} except {@code keep} (like {@code llama_memory_seq_keep}). Only
     * call this when no other thread is using those sequences. Blocks held by a prefix cache stay cached.
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
            ReentrantReadWriteLock.ReadLock lock = child.store.enter();
            try {
                HeadRows[][] heads = child.heads;
                int[][][] keep = new int[heads.length][][];
                long removed = 0;
                for (int l = 0; l < heads.length; l++) {
                    keep[l] = new int[heads[l].length][];
                    for (int h = 0; h < heads[l].length; h++) {
                        HeadRows hr = heads[l][h];
                        int a = lowerBound(hr, from);
                        int b = lowerBound(hr, to);
                        if (a == 0 && b == hr.length) {
                            continue;
                        }
                        int[] rows = new int[b - a];
                        for (int j = 0; j < rows.length; j++) {
                            rows[j] = a + j;
                        }
                        keep[l][h] = rows;
                        removed += hr.length - (b - a);
                    }
                }
                if (removed > 0) {
                    retainTables(child, keep);
                }
            } finally {
                lock.unlock();
            }
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
        checkRange(from, to);
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            int dim = s.layout.headDim();
            if (rope != null) {
                rope.dims(dim);
            }
            if (delta == 0) {
                return;
            }
            HeadRows[][] heads = s.heads;
            int layers = heads.length;
            int kvHeads = s.layout.kvHeads();
            int[][] first = new int[layers][kvHeads];
            int[][] end = new int[layers][kvHeads];
            float[][][] rotated = new float[layers][kvHeads][];
            boolean any = false;
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    HeadRows hr = heads[l][h];
                    int a = lowerBound(hr, from);
                    int b = lowerBound(hr, to);
                    first[l][h] = a;
                    end[l][h] = b;
                    if (a == b) {
                        continue;
                    }
                    any = true;
                    checkShift(hr, a, b, delta, l, h);
                    if (rope != null) {
                        rotated[l][h] = rotatedKeys(s, hr, a, b, delta, rope);
                        RowCodec.checkValues("re-rotated key of layer " + l + ", KV head " + h, rotated[l][h], 0,
                                rotated[l][h].length, s.layout.dtype());
                    }
                }
            }
            if (!any) {
                return;
            }
            SlabAllocator allocator = s.allocator;
            long[] fresh;
            for (int attempt = 1; ; attempt++) {   // counted again after a pressure handler changed sharing
                int need = 0;
                for (int l = 0; l < layers; l++) {
                    for (int h = 0; h < kvHeads; h++) {
                        if (rotated[l][h] != null) {
                            need += sharedBlocks(s, heads[l][h].keyBlocks, blockOf(s, first[l][h]),
                                    blockOf(s, end[l][h] - 1) + 1);
                        }
                    }
                }
                fresh = new long[need];
                if (s.store.tryAllocate(s, fresh, attempt)) {
                    break;
                }
            }
            int f = 0;
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    HeadRows hr = heads[l][h];
                    int a = first[l][h];
                    int b = end[l][h];
                    if (a == b) {
                        continue;
                    }
                    if (rotated[l][h] != null) {
                        for (int blk = blockOf(s, a); blk <= blockOf(s, b - 1); blk++) {
                            if (allocator.refCount(hr.keyBlocks[blk]) > 1) {
                                int rowsHere = Math.min(s.tokensPerBlock, hr.length - blk * s.tokensPerBlock);
                                long copy = fresh[f++];
                                MemorySegment.copy(allocator.segment(hr.keyBlocks[blk]), 0,
                                        allocator.segment(copy), 0, rowsHere * s.rowBytes);
                                allocator.release(hr.keyBlocks[blk]);
                                hr.keyBlocks[blk] = copy;
                            }
                        }
                        writeKeys(s, hr, a, b, rotated[l][h]);
                    }
                    for (int r = a; r < b; r++) {
                        hr.positions[r] += delta;
                    }
                    hr.addressEpoch = -1;
                }
            }
            if (f < fresh.length) {   // a sibling dropped its reference after we counted: nothing to copy
                allocator.releaseAll(fresh, f, fresh.length);
            }
            s.modCount++;
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- table rewriting

    /**
     * Keeps {@code keep[l][h]} rows (strictly increasing; {@code null} = table unchanged) of every table, all
     * tables or none. Leading blocks whose rows stay where they are keep their handles (and their sharing); the
     * rest of a table is compacted in place when exclusively owned, gathered into fresh blocks when shared. A pure
     * truncation writes nothing. Caller holds the store's read lock and has validated {@code keep}.
     */
    static void retainTables(Sequence s, int[][][] keep) {
        HeadRows[][] heads = s.heads;
        long[] fresh;
        for (int attempt = 1; ; attempt++) {
            int need = 0;
            for (int l = 0; l < heads.length; l++) {
                for (int h = 0; h < heads[l].length; h++) {
                    int[] rows = keep[l][h];
                    if (rows == null) {
                        continue;
                    }
                    HeadRows hr = heads[l][h];
                    int k = identityPrefix(rows);
                    if (k == rows.length) {
                        continue;   // truncation
                    }
                    int untouched = k / s.tokensPerBlock;
                    int region = s.blocksFor(rows.length) - untouched;
                    need += sharedBlocks(s, hr.keyBlocks, untouched, hr.blockCount) > 0 ? region : 0;
                    need += sharedBlocks(s, hr.valueBlocks, untouched, hr.blockCount) > 0 ? region : 0;
                }
            }
            fresh = new long[need];
            if (s.store.tryAllocate(s, fresh, attempt)) {
                break;
            }
        }
        int f = 0;
        for (int l = 0; l < heads.length; l++) {
            for (int h = 0; h < heads[l].length; h++) {
                int[] rows = keep[l][h];
                if (rows == null) {
                    continue;
                }
                HeadRows hr = heads[l][h];
                int m = rows.length;
                int k = identityPrefix(rows);
                int newCount = s.blocksFor(m);
                if (k == m) {
                    s.allocator.releaseAll(hr.keyBlocks, newCount, hr.blockCount);
                    s.allocator.releaseAll(hr.valueBlocks, newCount, hr.blockCount);
                } else {
                    int untouched = k / s.tokensPerBlock;
                    f = rewriteRegion(s, hr.keyBlocks, hr.blockCount, rows, untouched, newCount, fresh, f);
                    f = rewriteRegion(s, hr.valueBlocks, hr.blockCount, rows, untouched, newCount, fresh, f);
                    for (int j = k; j < m; j++) {
                        hr.positions[j] = hr.positions[rows[j]];
                    }
                }
                s.referencedBlocks -= 2L * (hr.blockCount - newCount);
                hr.length = m;
                hr.blockCount = newCount;
                hr.addressEpoch = -1;
                hr.trim();
            }
        }
        if (f < fresh.length) {
            s.allocator.releaseAll(fresh, f, fresh.length);
        }
        s.modCount++;
    }

    /**
     * Rebuilds blocks {@code [untouched, count)} of one K or V table so that new row j holds old row rows[j];
     * returns the next unused index of {@code fresh}.
     */
    private static int rewriteRegion(Sequence s, long[] blocks, int count, int[] rows, int untouched, int newCount,
                                     long[] fresh, int f) {
        SlabAllocator allocator = s.allocator;
        int tpb = s.tokensPerBlock;
        long rowBytes = s.rowBytes;
        int firstRow = untouched * tpb;
        if (sharedBlocks(s, blocks, untouched, count) > 0) {
            long[] old = java.util.Arrays.copyOfRange(blocks, untouched, count);
            MemorySegment[] src = s.segments(old, old.length);
            MemorySegment[] dst = new MemorySegment[newCount - untouched];
            for (int b = 0; b < dst.length; b++) {
                blocks[untouched + b] = fresh[f + b];
                dst[b] = allocator.segment(fresh[f + b]);
            }
            for (int j = firstRow; j < rows.length; j++) {
                int r = rows[j] - firstRow;
                int d = j - firstRow;
                MemorySegment.copy(src[r / tpb], (long) (r % tpb) * rowBytes, dst[d / tpb],
                        (long) (d % tpb) * rowBytes, rowBytes);
            }
            allocator.releaseAll(old, 0, old.length);
            return f + dst.length;
        }
        MemorySegment[] seg = s.segments(blocks, count);
        for (int j = firstRow; j < rows.length; j++) {
            int r = rows[j];   // r >= j: a forward copy never overwrites a row still to be read
            if (r != j) {
                MemorySegment.copy(seg[r / tpb], (long) (r % tpb) * rowBytes, seg[j / tpb],
                        (long) (j % tpb) * rowBytes, rowBytes);
            }
        }
        allocator.releaseAll(blocks, newCount, count);
        return f;
    }

    /** Length of the prefix of rows with rows[j] == j (rows that stay where they are). */
    private static int identityPrefix(int[] rows) {
        int k = 0;
        while (k < rows.length && rows[k] == k) {
            k++;
        }
        return k;
    }

    private static int sharedBlocks(Sequence s, long[] blocks, int from, int to) {
        int n = 0;
        for (int b = from; b < to; b++) {
            n += s.allocator.refCount(blocks[b]) > 1 ? 1 : 0;
        }
        return n;
    }

    // ---------------------------------------------------------------- shifting

    private static void checkShift(HeadRows hr, int a, int b, long delta, int l, int h) {
        long lo;
        long hi;
        try {
            lo = Math.addExact(hr.positions[a], delta);
            hi = Math.addExact(hr.positions[b - 1], delta);
        } catch (ArithmeticException e) {
            throw new KvArgumentException("shifting positions by " + delta + " overflows a long in layer " + l
                    + ", KV head " + h);
        }
        if (lo < 0) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + hr.positions[a] + " to " + lo
                    + " in layer " + l + ", KV head " + h + "; positions must stay >= 0");
        }
        if (a > 0 && hr.positions[a - 1] >= lo) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + hr.positions[a] + " to " + lo
                    + ", not above the unshifted position " + hr.positions[a - 1] + " before it (layer " + l
                    + ", KV head " + h + "); positions must stay strictly increasing: remove the overlap first");
        }
        if (b < hr.length && hi >= hr.positions[b]) {
            throw new KvArgumentException("shifting by " + delta + " moves position " + hr.positions[b - 1] + " to "
                    + hi + ", not below the unshifted position " + hr.positions[b] + " after it (layer " + l
                    + ", KV head " + h + "); positions must stay strictly increasing: remove the overlap first");
        }
    }

    /** Dequantized keys of rows [a, b), rotated by delta positions. */
    private static float[] rotatedKeys(Sequence s, HeadRows hr, int a, int b, long delta, RopeRotation rope) {
        int dim = s.layout.headDim();
        float[] out = new float[(b - a) * dim];
        for (int r = a; r < b; r++) {
            MemorySegment seg = s.allocator.segment(hr.keyBlocks[blockOf(s, r)]);
            RowCodec.read(seg, (long) (r % s.tokensPerBlock) * s.rowBytes, out, (r - a) * dim, dim,
                    s.layout.dtype());
            rope.rotate(out, (r - a) * dim, dim, delta);
        }
        return out;
    }

    private static void writeKeys(Sequence s, HeadRows hr, int a, int b, float[] keys) {
        int dim = s.layout.headDim();
        for (int r = a; r < b; r++) {
            MemorySegment seg = s.allocator.segment(hr.keyBlocks[blockOf(s, r)]);
            RowCodec.write(keys, (r - a) * dim, seg, (long) (r % s.tokensPerBlock) * s.rowBytes, dim,
                    s.layout.dtype());
        }
    }

    // ---------------------------------------------------------------- helpers

    private static int blockOf(Sequence s, int row) {
        return row / s.tokensPerBlock;
    }

    /** First row index whose position is >= p (positions ascend). */
    static int lowerBound(HeadRows hr, long p) {
        int lo = 0;
        int hi = hr.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (hr.positions[mid] < p) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    private static void checkRange(long from, long to) {
        if (from < 0 || to < from) {
            throw new KvArgumentException("position range [" + from + ", " + to + ") is not allowed: need "
                    + "0 <= from <= to (use SequenceOps.END for 'to the end')");
        }
    }
}
