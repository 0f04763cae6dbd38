package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The native attention kernels over a sequence's block tables. The address arrays the kernel needs are built here,
 * from the {@link BlockTable}s, while the sequence's read lock is held for the whole native call: a concurrent
 * close, keep, eviction or compaction waits until the call returns, so no block is freed, moved or unmapped under
 * a running kernel. Callers pass tables and Java arrays only, never addresses.
 *
 * <p>An instance owns native scratch that grows to the largest call and is reused. One call at a time: a second
 * concurrent call, or {@link #close()} during a call, fails with {@link ConcurrentUseException} (the scratch is
 * never shared by two native calls).
 */
public final class TableAttention implements AutoCloseable {
    /** Largest thread count a call accepts. */
    public static final int MAX_THREADS = NativeAttention.MAX_THREADS;

    private final int threads;
    private final NativeScratch scratch = new NativeScratch();
    private final AtomicBoolean inUse = new AtomicBoolean();
    private final String owner;
    private final boolean quantisedQuery;
    private final boolean integerValues;
    private volatile boolean closed;

    /** @param owner the public class name, for messages */
    public TableAttention(int threads, String owner) {
        this(threads, owner, false);
    }

    /**
     * @param owner the public class name, for messages
     * @param quantisedQuery decode scores of q8_0 / q4_0 keys with a q8_0 query and integer dot products
     *                       ({@link AttentionShape#quantisedScores()})
     */
    public TableAttention(int threads, String owner, boolean quantisedQuery) {
        this(threads, owner, quantisedQuery, false);
    }

    /**
     * @param owner the public class name, for messages
     * @param quantisedQuery decode scores of q8_0 / q4_0 keys with a q8_0 query and integer dot products
     *                       ({@link AttentionShape#quantisedScores()})
     * @param integerValues decode outputs of q8_0 / q4_0 values as integer sums of 8-bit weights
     *                      ({@link AttentionShape#integerValueSums()})
     */
    public TableAttention(int threads, String owner, boolean quantisedQuery, boolean integerValues) {
        if (threads < 1 || threads > MAX_THREADS) {
            throw new KvArgumentException("threads must be in [1, " + MAX_THREADS + "], got " + threads);
        }
        this.threads = threads;
        this.owner = owner;
        this.quantisedQuery = quantisedQuery;
        this.integerValues = integerValues;
    }

    public int threads() {
        return threads;
    }

    /** Decode attention of one token's queries over every row of {@code layer}; {@code lse} may be null. */
    public void decode(SequenceTables t, int layer, float[] q, float[] out, float[] lse) {
        enter();
        try {
            KvLayout layout = check(t, layer, q, out, 1);
            int qh = layout.queryHeads();
            if (lse != null && lse.length != qh) {
                throw new KvArgumentException("lse must have queryHeads = " + qh + " floats, got " + lse.length);
            }
            t.beginRead();
            try {
                Tables tb = tables(t, layer, Math.multiplyExact((long) q.length, 2L));
                io((long) q.length * Float.BYTES);
                MemorySegment qSeg = qView;
                MemorySegment outSeg = outView;
                MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, q.length);
                MemorySegment lseSeg = lse == null ? null : tb.lse;
                NativeAttention.decode(shape(layout), qSeg, tb.keys, tb.values, tb.offsets, tb.lengths,
                        scale(layout), outSeg, lseSeg, threads);
                MemorySegment.copy(outSeg, JAVA_FLOAT, 0, out, 0, out.length);
                if (lse != null) {
                    MemorySegment.copy(lseSeg, JAVA_FLOAT, 0, lse, 0, qh);
                }
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }

    /** Causal attention for the last {@code n} rows of every KV head of {@code layer}. */
    public void prefill(SequenceTables t, int layer, float[] q, int n, float[] out) {
        enter();
        try {
            KvLayout layout = check(t, layer, q, out, n);
            t.beginRead();
            try {
                Tables tb = tables(t, layer, Math.multiplyExact((long) q.length, 2L));
                io((long) q.length * Float.BYTES);
                MemorySegment qSeg = qView;
                MemorySegment outSeg = outView;
                MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, q.length);
                NativeAttention.prefill(shape(layout), n, qSeg, tb.keys, tb.values, tb.offsets,
                        tb.lengths, scale(layout), outSeg, threads);
                MemorySegment.copy(outSeg, JAVA_FLOAT, 0, out, 0, out.length);
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }

    /**
     * Decode with the caller's own f32 tensors: {@code q} and {@code out} hold {@code queryHeads * headDim} floats
     * (heap or native). Native, 4-byte aligned segments are handed to the kernel as they are (no copy); heap ones
     * go through the scratch once each way.
     */
    public void decode(SequenceTables t, int layer, MemorySegment q, MemorySegment out) {
        enter();
        try {
            KvLayout layout = checkSegments(t, layer, q, out, 1);
            t.beginRead();
            try {
                long bytes = tokenBytes(layout);
                Tables tb = tables(t, layer, 2 * bytes / Float.BYTES);
                io(bytes);
                MemorySegment qSeg = direct(q) ? q : copyIn(q, qView);
                MemorySegment outSeg = direct(out) ? out : outView;
                NativeAttention.decode(shape(layout), qSeg, tb.keys, tb.values, tb.offsets, tb.lengths,
                        scale(layout), outSeg, null, threads);
                if (outSeg != out) {
                    MemorySegment.copy(outSeg, 0, out, 0, bytes);
                }
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }

    /** Causal prefill with the caller's own f32 tensors ({@code n * queryHeads * headDim} floats each). */
    public void prefill(SequenceTables t, int layer, MemorySegment q, int n, MemorySegment out) {
        enter();
        try {
            KvLayout layout = checkSegments(t, layer, q, out, n);
            t.beginRead();
            try {
                long bytes = Math.multiplyExact(tokenBytes(layout), (long) n);
                Tables tb = tables(t, layer, 2 * bytes / Float.BYTES);
                io(bytes);
                MemorySegment qSeg = direct(q) ? q : copyIn(q, qView);
                MemorySegment outSeg = direct(out) ? out : outView;
                NativeAttention.prefill(shape(layout), n, qSeg, tb.keys, tb.values, tb.offsets,
                        tb.lengths, scale(layout), outSeg, threads);
                if (outSeg != out) {
                    MemorySegment.copy(outSeg, 0, out, 0, bytes);
                }
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }

    /**
     * Decode attention of a batch of sequences of one store over {@code layer}, in one native call: row {@code i}
     * of {@code q} ({@code [batch][queryHeads][headDim]} f32) attends over the tables of {@code batch[i]} into row
     * {@code i} of {@code out} (same shape) and, when {@code lse} is not null, of {@code lse}
     * ({@code [batch][queryHeads]}). Each row is bitwise what {@link #decode(SequenceTables, int, MemorySegment,
     * MemorySegment)} gives for it alone. All arguments are validated before any lock is taken or any output
     * written; the sequences' read locks are then taken in ascending id order (see
     * {@link SequenceTables#beginReadAll}) and held for the whole native call. A sequence may appear more than once.
     * Once the instance's scratch has grown to hold a batch this large (it doubles when a call needs more), a call
     * allocates nothing on the heap, whatever its tensors (the serving step's hot path).
     *
     * @param tablesOf the tables of a batch element; a constant function, so that the call needs no list of tables
     */
    public <S> void decodeBatch(java.util.List<S> batch,
                                java.util.function.Function<? super S, SequenceTables> tablesOf, int layer,
                                MemorySegment q, MemorySegment out, MemorySegment lse) {
        enter();
        try {
            int distinct = 0;
            try {
                int n = takeRows(batch, tablesOf);
                KvLayout layout = checkBatch(n, layer, q, out, lse);
                distinct = lockOrder(n);
                SequenceTables.beginReadAll(lockOrder, distinct);
                try {
                    runBatch(n, layer, layout, q, out, lse);
                } finally {
                    SequenceTables.endReadAll(lockOrder, distinct);
                }
            } finally {
                // hold no sequence beyond the call, whether it ran or failed part-way
                java.util.Arrays.fill(rows, 0, rowsFilled, null);
                rowsFilled = 0;
                java.util.Arrays.fill(lockOrder, 0, distinct, null);
            }
        } finally {
            inUse.set(false);
        }
    }

    // The running batch call's sequences in batch order (rows, the first rowsFilled set) and distinct, ascending by
    // id (lockOrder: the order their read locks are taken in). Arrays the instance keeps, so a call allocates no
    // list or set; read from the caller's list once, so a list changed during the call cannot make a row differ
    // from what was locked.
    private SequenceTables[] rows = new SequenceTables[8];
    private int rowsFilled;
    private SequenceTables[] lockOrder = new SequenceTables[8];

    /**
     * Copies the batch's tables into {@link #rows} and returns how many: at least one, every element non-null, all
     * of one store. Nothing is locked yet; whatever was copied before a failure is cleared by the caller.
     */
    private <S> int takeRows(java.util.List<S> batch, java.util.function.Function<? super S, SequenceTables> tablesOf) {
        if (batch == null) {
            throw new KvArgumentException("batch must not be null");
        }
        int n = batch.size();
        if (n <= 0) {
            throw new KvArgumentException("a batch needs at least one sequence, got a list of size " + n);
        }
        if (rows.length < n) {
            rows = new SequenceTables[Math.max(n, rows.length * 2)];
            lockOrder = new SequenceTables[rows.length];
        }
        for (int i = 0; i < n; i++) {
            S element = batch.get(i);
            if (element == null) {
                throw new KvArgumentException("batch[" + i + "] must not be null");
            }
            SequenceTables t = tablesOf.apply(element);
            if (i > 0 && !t.sameStore(rows[0])) {
                throw new KvArgumentException("batch[" + i + "] (sequence " + t.id() + ") belongs to another store "
                        + "than batch[0] (sequence " + rows[0].id() + "); a batch must come from one store");
            }
            rows[i] = t;
            rowsFilled = i + 1;
        }
        return n;
    }

    /**
     * Fills {@link #lockOrder} with the distinct sequences of the first {@code n} rows, ascending by id, and
     * returns how many. An insertion sort: quadratic only for a batch in reverse id order, and a batch is tens of
     * sequences (a scheduler that keeps its order hands them over sorted: one comparison each); it needs no key
     * array or boxing.
     */
    private int lockOrder(int n) {
        SequenceTables[] a = lockOrder;
        int count = 0;
        for (int i = 0; i < n; i++) {
            SequenceTables t = rows[i];
            int k = count;
            while (k > 0 && a[k - 1].id() > t.id()) {
                k--;
            }
            boolean seen = false;
            for (int j = k - 1; j >= 0 && a[j].id() == t.id(); j--) {
                seen |= a[j] == t;
            }
            if (!seen) {
                System.arraycopy(a, k, a, k + 1, count - k);
                a[k] = t;
                count++;
            }
        }
        return count;
    }

    /** Lays out every row's block table in the int64 scratch and runs the batched kernel; all locks are held. */
    private void runBatch(int n, int layer, KvLayout layout, MemorySegment q, MemorySegment out, MemorySegment lse) {
        int heads = layout.kvHeads();
        long tokenBytes = tokenBytes(layout);
        long allBytes = Math.multiplyExact(tokenBytes, (long) n);
        long lseBytes = Math.multiplyExact((long) layout.queryHeads() * Float.BYTES, (long) n);
        boolean qDirect = direct(q);
        boolean outDirect = direct(out);
        boolean lseDirect = lse == null || direct(lse);
        long longs = Math.multiplyExact(NativeAttention.DESCRIPTOR_BYTES / Long.BYTES, (long) n);
        for (int i = 0; i < n; i++) {
            longs = Math.addExact(longs, NativeAttention.packedTableLongs(heads, blockCount(rows[i].tables[layer])));
        }
        long lseRow = (long) layout.queryHeads() * Float.BYTES;
        long floatBytes = qDirect && outDirect && lseDirect ? 0 : 2 * allBytes + lseBytes;
        scratch.ensure(floatBytes / Float.BYTES, longs);
        MemorySegment qSeg = q;
        MemorySegment outSeg = out;
        MemorySegment lseSeg = lse;
        if (floatBytes > 0) {
            batchViews(tokenBytes, lseRow);
            if (!qDirect) {
                MemorySegment.copy(q, 0, batchQ, 0, allBytes);
                qSeg = batchQ;
            }
            outSeg = outDirect ? out : batchOut;
            lseSeg = lseDirect ? lse : batchLse;
        }
        MemorySegment tables = ownLongs();
        long at = NativeAttention.DESCRIPTOR_BYTES * n;
        for (int i = 0; i < n; i++) {
            SequenceTables t = rows[i];
            BlockTable[] row = t.tables[layer];
            long blocks = blockCount(row);
            long keysAt = NativeAttention.packedKeysAt(at, heads);
            long valuesAt = keysAt + blocks * Long.BYTES;
            t.allocator.layerAddresses(row, tables, keysAt, valuesAt, at, NativeAttention.packedLengthsAt(at, heads));
            at = valuesAt + blocks * Long.BYTES;
        }
        NativeAttention.decodeBatch(shape(layout), n, qSeg, outSeg, lseSeg, tables, scale(layout), threads);
        if (outSeg != out) {
            MemorySegment.copy(outSeg, 0, out, 0, allBytes);
        }
        if (lseSeg != lse) {
            MemorySegment.copy(lseSeg, 0, lse, 0, lseBytes);
        }
    }

    private static long blockCount(BlockTable[] row) {
        long blocks = 0;
        for (BlockTable b : row) {
            blocks += b.blockCount;
        }
        return blocks;
    }

    // Float scratch views for a batch call's heap (or misaligned, read-only) q, out and lse: as many rows of each as
    // the scratch holds, so they depend on its size and the row sizes only, and a batch size that changes from call
    // to call rebuilds nothing. The kernel reads and writes the first rows of each.
    private MemorySegment batchFloats;
    private long batchTokenBytes;
    private long batchLseRow;
    private MemorySegment batchQ;
    private MemorySegment batchOut;
    private MemorySegment batchLse;

    private void batchViews(long tokenBytes, long lseRow) {
        MemorySegment floats = scratch.floats();
        if (floats != batchFloats || tokenBytes != batchTokenBytes || lseRow != batchLseRow) {
            long rowsHeld = floats.byteSize() / (2 * tokenBytes + lseRow);
            batchQ = floats.asSlice(0, rowsHeld * tokenBytes);
            batchOut = floats.asSlice(rowsHeld * tokenBytes, rowsHeld * tokenBytes);
            batchLse = floats.asSlice(2 * rowsHeld * tokenBytes, rowsHeld * lseRow);
            batchFloats = floats;
            batchTokenBytes = tokenBytes;
            batchLseRow = lseRow;
        }
    }

    /** One validation of the tensors for the whole batch; nothing is locked or written before it passes. */
    private KvLayout checkBatch(int n, int layer, MemorySegment q, MemorySegment out, MemorySegment lse) {
        if (q == null || out == null) {
            throw new KvArgumentException("q and out must not be null");
        }
        KvLayout layout = rows[0].layout;
        checkQueryOut(layout, layer, q, out, n, true);
        if (lse != null) {
            long lseBytes = Math.multiplyExact((long) n * layout.queryHeads(), (long) Float.BYTES);
            if (lse.byteSize() != lseBytes) {
                throw new KvArgumentException("lse must be batch " + n + " x queryHeads " + layout.queryHeads()
                        + " f32 values = " + lseBytes + " bytes, got " + lse.byteSize());
            }
            if (lse.isReadOnly()) {
                throw new KvArgumentException("lse must be writable");
            }
            if (lse.asOverlappingSlice(q).isPresent() || lse.asOverlappingSlice(out).isPresent()) {
                throw new KvArgumentException("lse must not overlap q or out");
            }
        }
        return layout;
    }

    private static long tokenBytes(KvLayout layout) {
        return Math.multiplyExact((long) layout.queryHeads() * layout.headDim(), (long) Float.BYTES);
    }

    /** A segment the kernel may read or write in place: native, float aligned, not read-only. */
    private static boolean direct(MemorySegment s) {
        return s.isNative() && s.address() % Float.BYTES == 0 && !s.isReadOnly();
    }

    private static MemorySegment copyIn(MemorySegment src, MemorySegment dst) {
        MemorySegment.copy(src, 0, dst, 0, dst.byteSize());
        return dst;
    }

    /**
     * The checks every segment entry point shares: the layer, q and out of {@code rows x queryHeads x headDim} f32
     * values ({@code batch}: the rows are a batch's sequences, for the message), out writable, no overlap, finite
     * queries. The message is built only on failure: a call that passes allocates nothing.
     */
    private static void checkQueryOut(KvLayout layout, int layer, MemorySegment q, MemorySegment out, long rows,
                                      boolean batch) {
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        int heads = layout.queryHeads();
        int dim = layout.headDim();
        long floats = Math.multiplyExact(Math.multiplyExact(rows, heads), dim);
        long bytes = Math.multiplyExact(floats, (long) Float.BYTES);
        if (q.byteSize() != bytes || out.byteSize() != bytes) {
            throw new KvArgumentException("q and out must be " + (batch ? "batch " : "") + rows + " x queryHeads "
                    + heads + " x headDim " + dim + " f32 values = " + bytes + " bytes, got " + q.byteSize() + " and "
                    + out.byteSize());
        }
        if (out.isReadOnly()) {
            throw new KvArgumentException("out must be writable");
        }
        if (q.asOverlappingSlice(out).isPresent()) {
            throw new KvArgumentException("q and out must not overlap");
        }
        for (long i = 0; i < floats; i++) {
            float x = q.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            if (!Float.isFinite(x)) {
                throw new KvArgumentException("q[" + i / heads / dim + "][" + i / dim % heads + "][" + i % dim
                        + "] = " + x + ": queries must be finite");
            }
        }
    }

    private static KvLayout checkSegments(SequenceTables t, int layer, MemorySegment q, MemorySegment out, int n) {
        if (t == null || q == null || out == null) {
            throw new KvArgumentException("sequence, q and out must not be null");
        }
        KvLayout layout = t.layout;
        if (n < 1) {
            throw new KvArgumentException("a prefill chunk needs n >= 1 query tokens, got " + n);
        }
        checkQueryOut(layout, layer, q, out, n, false);
        return layout;
    }

    /**
     * PoD decode, the two partial attentions: own K blocks of {@code layer} scored with {@code q} into
     * {@code outP}/{@code lseP}, aliased K blocks (a lower layer's) scored with {@code qDistant} into
     * {@code outD}/{@code lseD}; both with the layer's own values. The caller merges them by log-sum-exp.
     */
    public void podDecode(SequenceTables t, int layer, float[] q, float[] qDistant, float[] outP, float[] lseP,
                          float[] outD, float[] lseD) {
        enter();
        try {
            KvLayout layout = check(t, layer, q, outP, 1);
            check(t, layer, qDistant, outD, 1);
            int qh = layout.queryHeads();
            if (lseP == null || lseD == null || lseP.length != qh || lseD.length != qh) {
                throw new KvArgumentException("lseP and lseD must have queryHeads = " + qh + " floats");
            }
            int width = q.length;
            t.beginRead();
            try {
                BlockTable[] row = t.tables[layer];
                int heads = row.length;
                long blocks = blockCount(row);
                long floatsNeeded = Math.addExact(Math.multiplyExact(4L, width), 2L * qh);
                long longsNeeded = Math.addExact(Math.multiplyExact(4L, blocks), 2 * (2L * heads + 1));
                scratch.ensure(floatsNeeded, longsNeeded);
                long fo = 0;
                MemorySegment qSeg = scratch.floats().asSlice(fo, width * 4L);
                fo += width * 4L;
                MemorySegment qdSeg = scratch.floats().asSlice(fo, width * 4L);
                fo += width * 4L;
                MemorySegment outPSeg = scratch.floats().asSlice(fo, width * 4L);
                fo += width * 4L;
                MemorySegment outDSeg = scratch.floats().asSlice(fo, width * 4L);
                fo += width * 4L;
                MemorySegment lsePSeg = scratch.floats().asSlice(fo, qh * 4L);
                fo += qh * 4L;
                MemorySegment lseDSeg = scratch.floats().asSlice(fo, qh * 4L);
                MemorySegment longs = ownLongs();
                long lo = 0;
                MemorySegment keysP = longs.asSlice(lo, blocks * 8);
                lo += blocks * 8;
                MemorySegment valuesP = longs.asSlice(lo, blocks * 8);
                lo += blocks * 8;
                MemorySegment keysD = longs.asSlice(lo, blocks * 8);
                lo += blocks * 8;
                MemorySegment valuesD = longs.asSlice(lo, blocks * 8);
                lo += blocks * 8;
                MemorySegment offsetsP = longs.asSlice(lo, (heads + 1L) * 8);
                lo += (heads + 1L) * 8;
                MemorySegment lengthsP = longs.asSlice(lo, heads * 8L);
                lo += heads * 8L;
                MemorySegment offsetsD = longs.asSlice(lo, (heads + 1L) * 8);
                lo += (heads + 1L) * 8;
                MemorySegment lengthsD = longs.asSlice(lo, heads * 8L);

                int tpb = layout.tokensPerBlock();
                SlabAllocator allocator = t.allocator;
                long[] one = new long[1];
                long p = 0;
                long d = 0;
                for (int h = 0; h < heads; h++) {
                    offsetsP.setAtIndex(JAVA_LONG, h, p);
                    offsetsD.setAtIndex(JAVA_LONG, h, d);
                    BlockTable bt = row[h];
                    long rowsP = 0;
                    for (int b = 0; b < bt.blockCount; b++) {
                        boolean aliased = t.baseLayerOf(layer, h, b) != layer;
                        // aliases are always full blocks (a partial tail is never aliased); own blocks keep
                        // table order, so the partial tail (if any) comes last
                        MemorySegment kOut = aliased ? keysD : keysP;
                        MemorySegment vOut = aliased ? valuesD : valuesP;
                        long at = aliased ? d++ : p++;
                        one[0] = bt.keyBlocks[b];
                        allocator.addresses(one, 1, kOut, at);
                        one[0] = bt.valueBlocks[b];
                        allocator.addresses(one, 1, vOut, at);
                        if (!aliased) {
                            rowsP += Math.min(tpb, bt.length - (long) b * tpb);
                        }
                    }
                    lengthsP.setAtIndex(JAVA_LONG, h, rowsP);
                    lengthsD.setAtIndex(JAVA_LONG, h, bt.length - rowsP);
                }
                offsetsP.setAtIndex(JAVA_LONG, heads, p);
                offsetsD.setAtIndex(JAVA_LONG, heads, d);
                MemorySegment.copy(q, 0, qSeg, JAVA_FLOAT, 0, width);
                MemorySegment.copy(qDistant, 0, qdSeg, JAVA_FLOAT, 0, width);
                AttentionShape shape = AttentionShape.of(layout);
                float scale = scale(layout);
                NativeAttention.decode(shape, qSeg, keysP.asSlice(0, p * 8), valuesP.asSlice(0, p * 8), offsetsP,
                        lengthsP, scale, outPSeg, lsePSeg, threads);
                NativeAttention.decode(shape, qdSeg, keysD.asSlice(0, d * 8), valuesD.asSlice(0, d * 8), offsetsD,
                        lengthsD, scale, outDSeg, lseDSeg, threads);
                MemorySegment.copy(outPSeg, JAVA_FLOAT, 0, outP, 0, width);
                MemorySegment.copy(outDSeg, JAVA_FLOAT, 0, outD, 0, width);
                MemorySegment.copy(lsePSeg, JAVA_FLOAT, 0, lseP, 0, qh);
                MemorySegment.copy(lseDSeg, JAVA_FLOAT, 0, lseD, 0, qh);
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }

    /**
     * Reads all of {@code buffer} (a caller-owned native segment, rounded down to 64 bytes) once with
     * {@code threads} threads of the kernels' pool and returns a checksum; timing it gives the read bandwidth the
     * kernels can hope for.
     */
    public static double readBandwidthProbe(MemorySegment buffer, int threads) {
        return NativeAttention.readBandwidthProbe(buffer, threads);
    }

    /** Frees the scratch. Fails with {@link ConcurrentUseException} while a call runs. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (!inUse.compareAndSet(false, true)) {
            throw new ConcurrentUseException("this " + owner + " cannot be closed while a call on another thread "
                    + "is using it");
        }
        try {
            closed = true;
            cachedTables = null;
            scratch.close();
        } finally {
            inUse.set(false);
        }
    }

    private void enter() {
        if (!inUse.compareAndSet(false, true)) {
            throw new ConcurrentUseException("this " + owner + " is already running a call on another thread; an "
                    + owner + " is single-threaded (its native scratch is reused): create one per thread");
        }
        if (closed) {
            inUse.set(false);
            throw new ClosedException("this " + owner);
        }
    }

    private static float scale(KvLayout layout) {
        return (float) (1.0 / Math.sqrt(layout.headDim()));
    }

    private static KvLayout check(SequenceTables t, int layer, float[] q, float[] out, int n) {
        if (t == null || q == null || out == null) {
            throw new KvArgumentException("sequence, q and out must not be null");
        }
        KvLayout layout = t.layout;
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        if (n < 1) {
            throw new KvArgumentException("a prefill chunk needs n >= 1 query tokens, got " + n);
        }
        long expected = Math.multiplyExact(Math.multiplyExact((long) n, layout.queryHeads()), layout.headDim());
        if (q.length != expected || out.length != expected) {
            throw new KvArgumentException("q and out must have " + n + " x queryHeads " + layout.queryHeads()
                    + " x headDim " + layout.headDim() + " = " + expected + " floats, got " + q.length + " and "
                    + out.length);
        }
        for (int i = 0; i < q.length; i++) {
            if (!Float.isFinite(q[i])) {
                throw new KvArgumentException("q[" + i + "] = " + q[i] + ": queries must be finite");
            }
        }
        return layout;
    }

    /** Native views of the block tables of one layer, in the scratch buffers. */
    private record Tables(MemorySegment keys, MemorySegment values, MemorySegment offsets, MemorySegment lengths,
                          MemorySegment lse) {
    }

    // The address cache: the layer whose address arrays are in the scratch's int64 region right now. They stay
    // valid while that sequence's tables keep their version (bumped by every write-lock hold) and the allocator
    // its relocation epoch (bumped by every compaction that moved a block); both are read under the sequence's
    // read lock and the store's shared lock, which a compaction or a table change would need exclusively.
    // Holding the SequenceTables keeps only its heap metadata reachable, until the next call or close().
    private SequenceTables cachedTables;
    private int cachedLayer = -1;
    private long cachedVersion = -1;
    private long cachedEpoch = -1;
    // Views into the scratch regions, rebuilt only when the scratch grows or the geometry changes, so a call
    // (hit or miss) allocates nothing once the sizes have been seen.
    private Tables views;
    private MemorySegment viewsLongs;
    private long viewsBlockCapacity;
    private int viewsHeads;
    private int viewsQueryHeads;
    private MemorySegment ioFloats;
    private long ioBytes;
    private MemorySegment qView;
    private MemorySegment outView;
    private KvLayout shapeLayout;
    private AttentionShape shape;

    /**
     * The int64 scratch for a call that lays out its own arrays there (a batch's descriptors and address arrays,
     * PoD's two tables): that is where {@link #tables} caches a single call's address arrays, so taking it drops the
     * cache. Without that, a single decode after a batch of the same (sequence, layer, version) took the batch's
     * descriptors for its block addresses. Call after {@code scratch.ensure}, before writing.
     */
    private MemorySegment ownLongs() {
        cachedTables = null;
        return scratch.longs();
    }

    /** Address arrays of one layer, from the cache when still valid; the caller holds the sequence's read lock. */
    private Tables tables(SequenceTables t, int layer, long floatsNeeded) {
        BlockTable[] row = t.tables[layer];
        int heads = row.length;
        long blocks = blockCount(row);
        int qh = t.layout.queryHeads();
        long capacity = viewsBlockCapacity >= blocks ? viewsBlockCapacity : Math.max(64, Long.highestOneBit(blocks) << 1);
        long longsNeeded = Math.addExact(Math.multiplyExact(2L, capacity), (heads + 1L) + heads + (qh + 1L) / 2);
        scratch.ensure(floatsNeeded, longsNeeded);
        MemorySegment longs = scratch.longs();
        if (longs != viewsLongs || capacity != viewsBlockCapacity || heads != viewsHeads || qh != viewsQueryHeads) {
            long cap = capacity * Long.BYTES;
            views = new Tables(longs.asSlice(0, cap), longs.asSlice(cap, cap),
                    longs.asSlice(2 * cap, (heads + 1L) * Long.BYTES),
                    longs.asSlice(2 * cap + (heads + 1L) * Long.BYTES, (long) heads * Long.BYTES),
                    longs.asSlice(2 * cap + (2L * heads + 1) * Long.BYTES, (long) qh * Float.BYTES));
            viewsLongs = longs;
            viewsBlockCapacity = capacity;
            viewsHeads = heads;
            viewsQueryHeads = qh;
            cachedTables = null;
        }
        long version = t.readVersion();
        long epoch = t.allocator.relocationEpoch();
        if (version >= 0 && cachedTables == t && cachedLayer == layer && cachedVersion == version
                && cachedEpoch == epoch) {
            return views;
        }
        cachedTables = null;    // not valid while being refilled (a failed fill leaves no stale entry)
        long cap = viewsBlockCapacity * Long.BYTES; // the views' positions in the int64 scratch (above)
        t.allocator.layerAddresses(row, viewsLongs, 0, cap, 2 * cap, 2 * cap + (heads + 1L) * Long.BYTES);
        if (version >= 0) {
            cachedTables = t;
            cachedLayer = layer;
            cachedVersion = version;
            cachedEpoch = epoch;
        }
        return views;
    }

    /** Query and output views of {@code bytes} each in the float scratch (ensured by {@link #tables}). */
    private void io(long bytes) {
        MemorySegment floats = scratch.floats();
        if (floats != ioFloats || bytes != ioBytes) {
            qView = floats.asSlice(0, bytes);
            outView = floats.asSlice(bytes, bytes);
            ioFloats = floats;
            ioBytes = bytes;
        }
    }

    private AttentionShape shape(KvLayout layout) {
        if (layout != shapeLayout) {
            shape = AttentionShape.of(layout).withQuantisedQuery(quantisedQuery).withIntegerValues(integerValues);
            shapeLayout = layout;
        }
        return shape;
    }

    /**
     * For benchmarks that separate the kernel from the per-call costs: builds the address arrays of {@code layer}
     * once, then runs the decode kernel {@code steps} times on them under one hold of the sequence's read lock
     * (no per-call lock, check, copy or table lookup). {@code out} receives the last step's output.
     */
    public void decodeKernelOnly(SequenceTables t, int layer, float[] q, float[] out, int steps) {
        if (steps < 1) {
            throw new KvArgumentException("steps must be >= 1, got " + steps);
        }
        enter();
        try {
            KvLayout layout = check(t, layer, q, out, 1);
            t.beginRead();
            try {
                Tables tb = tables(t, layer, Math.multiplyExact((long) q.length, 2L));
                io((long) q.length * Float.BYTES);
                MemorySegment.copy(q, 0, qView, JAVA_FLOAT, 0, q.length);
                AttentionShape sh = shape(layout);
                float scale = scale(layout);
                for (int i = 0; i < steps; i++) {
                    NativeAttention.decode(sh, qView, tb.keys, tb.values, tb.offsets, tb.lengths, scale, outView,
                            null, threads);
                }
                MemorySegment.copy(outView, JAVA_FLOAT, 0, out, 0, out.length);
            } finally {
                t.endRead();
            }
        } finally {
            inUse.set(false);
        }
    }
}
