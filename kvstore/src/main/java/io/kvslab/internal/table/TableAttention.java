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
     * of {@code q} ({@code [batch][queryHeads][headDim]} f32) attends over {@code batch[i]} into row {@code i} of
     * {@code out} (same shape) and, when {@code lse} is not null, of {@code lse} ({@code [batch][queryHeads]}).
     * Each row is bitwise what {@link #decode(SequenceTables, int, MemorySegment, MemorySegment)} gives for it
     * alone. All arguments are validated before any lock is taken or any output written; the sequences' read
     * locks are then taken in ascending id order (see {@link SequenceTables#beginReadAll}) and held for the
     * whole native call. A sequence may appear more than once.
     */
    public void decodeBatch(java.util.List<SequenceTables> batch, int layer, MemorySegment q, MemorySegment out,
                            MemorySegment lse) {
        enter();
        try {
            KvLayout layout = checkBatch(batch, layer, q, out, lse);
            SequenceTables[] locked = lockOrder(batch);
            SequenceTables.beginReadAll(locked);
            try {
                runBatch(batch, layer, layout, q, out, lse);
            } finally {
                SequenceTables.endReadAll(locked);
            }
        } finally {
            inUse.set(false);
        }
    }

    /** Builds every row's address arrays and runs the batched kernel; the caller holds all the read locks. */
    private void runBatch(java.util.List<SequenceTables> batch, int layer, KvLayout layout, MemorySegment q,
                          MemorySegment out, MemorySegment lse) {
        int n = batch.size();
        int heads = layout.kvHeads();
        int qh = layout.queryHeads();
        long tokenBytes = tokenBytes(layout);
        long allBytes = Math.multiplyExact(tokenBytes, (long) n);
        long lseBytes = Math.multiplyExact((long) qh * Float.BYTES, (long) n);
        boolean qDirect = direct(q);
        boolean outDirect = direct(out);
        boolean lseDirect = lse == null || direct(lse);
        long blocks = 0;
        for (SequenceTables t : batch) {
            for (BlockTable b : t.tables[layer]) {
                blocks += b.blockCount;
            }
        }
        long floatBytes = (qDirect ? 0 : allBytes) + (outDirect ? 0 : allBytes) + (lseDirect ? 0 : lseBytes);
        long perRowLongs = 2L * heads + 1 + NativeAttention.DESCRIPTOR_BYTES / Long.BYTES;
        scratch.ensure(floatBytes / Float.BYTES,
                Math.addExact(Math.multiplyExact(2L, blocks), Math.multiplyExact(perRowLongs, (long) n)));
        long fo = 0;
        MemorySegment qSeg = q;
        if (!qDirect) {
            qSeg = copyIn(q, scratch.floats().asSlice(fo, allBytes));
            fo += allBytes;
        }
        MemorySegment outSeg = out;
        if (!outDirect) {
            outSeg = scratch.floats().asSlice(fo, allBytes);
            fo += allBytes;
        }
        MemorySegment lseSeg = lse;
        if (!lseDirect) {
            lseSeg = scratch.floats().asSlice(fo, lseBytes);
        }
        MemorySegment longs = ownLongs();
        MemorySegment descriptors = longs.asSlice(0, NativeAttention.DESCRIPTOR_BYTES * n);
        long lo = descriptors.byteSize();
        java.util.List<NativeAttention.DecodeSlice> slices = new java.util.ArrayList<>(n);
        long lseRow = (long) qh * Float.BYTES;
        for (int i = 0; i < n; i++) {
            SequenceTables t = batch.get(i);
            BlockTable[] row = t.tables[layer];
            long rowBlocks = 0;
            for (BlockTable b : row) {
                rowBlocks += b.blockCount;
            }
            MemorySegment keys = longs.asSlice(lo, rowBlocks * Long.BYTES);
            lo += keys.byteSize();
            MemorySegment values = longs.asSlice(lo, rowBlocks * Long.BYTES);
            lo += values.byteSize();
            MemorySegment offsets = longs.asSlice(lo, (heads + 1L) * Long.BYTES);
            lo += offsets.byteSize();
            MemorySegment lengths = longs.asSlice(lo, (long) heads * Long.BYTES);
            lo += lengths.byteSize();
            t.allocator.layerAddresses(row, keys, values, offsets, lengths);
            slices.add(new NativeAttention.DecodeSlice(qSeg.asSlice(i * tokenBytes, tokenBytes),
                    outSeg.asSlice(i * tokenBytes, tokenBytes),
                    lseSeg == null ? null : lseSeg.asSlice(i * lseRow, lseRow), keys, values, offsets, lengths));
        }
        NativeAttention.decodeBatch(shape(layout), slices, descriptors, scale(layout), threads);
        if (outSeg != out) {
            MemorySegment.copy(outSeg, 0, out, 0, allBytes);
        }
        if (lseSeg != lse) {
            MemorySegment.copy(lseSeg, 0, lse, 0, lseBytes);
        }
    }

    /** The distinct sequences of a batch, ascending by id: the order their read locks are taken in. */
    private static SequenceTables[] lockOrder(java.util.List<SequenceTables> batch) {
        java.util.IdentityHashMap<SequenceTables, Boolean> seen = new java.util.IdentityHashMap<>();
        for (SequenceTables t : batch) {
            seen.put(t, Boolean.TRUE);
        }
        SequenceTables[] distinct = seen.keySet().toArray(new SequenceTables[0]);
        java.util.Arrays.sort(distinct, java.util.Comparator.comparingLong(SequenceTables::id));
        return distinct;
    }

    /** One validation for the whole batch; nothing is locked or written before it passes. */
    private static KvLayout checkBatch(java.util.List<SequenceTables> batch, int layer, MemorySegment q,
                                       MemorySegment out, MemorySegment lse) {
        if (batch == null || q == null || out == null) {
            throw new KvArgumentException("batch, q and out must not be null");
        }
        int n = batch.size();
        if (n == 0) {
            throw new KvArgumentException("a batch needs at least one sequence");
        }
        SequenceTables first = batch.get(0);
        for (int i = 0; i < n; i++) {
            SequenceTables t = batch.get(i);
            if (t == null) {
                throw new KvArgumentException("batch[" + i + "] must not be null");
            }
            if (!t.sameStore(first)) {
                throw new KvArgumentException("batch[" + i + "] (sequence " + t.id() + ") belongs to another store "
                        + "than batch[0] (sequence " + first.id() + "); a batch must come from one store");
            }
        }
        KvLayout layout = first.layout;
        checkQueryOut(layout, layer, q, out, n, "batch " + n);
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
     * values ({@code rowsName} says what the rows are in the message), out writable, no overlap, finite queries.
     */
    private static void checkQueryOut(KvLayout layout, int layer, MemorySegment q, MemorySegment out, long rows,
                                      String rowsName) {
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        int heads = layout.queryHeads();
        int dim = layout.headDim();
        long floats = Math.multiplyExact(Math.multiplyExact(rows, heads), dim);
        long bytes = Math.multiplyExact(floats, (long) Float.BYTES);
        if (q.byteSize() != bytes || out.byteSize() != bytes) {
            throw new KvArgumentException("q and out must be " + rowsName + " x queryHeads " + heads + " x headDim "
                    + dim + " f32 values = " + bytes + " bytes, got " + q.byteSize() + " and " + out.byteSize());
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
        checkQueryOut(layout, layer, q, out, n, String.valueOf(n));
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
                long blocks = 0;
                for (BlockTable b : row) {
                    blocks += b.blockCount;
                }
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
        long blocks = 0;
        for (BlockTable b : row) {
            blocks += b.blockCount;
        }
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
        t.allocator.layerAddresses(row, views.keys, views.values, views.offsets, views.lengths);
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
