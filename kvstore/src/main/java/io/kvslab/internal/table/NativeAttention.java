package io.kvslab.internal.table;

import io.kvslab.internal.ffm.NativeLibrary;

import io.kvslab.KvSlabException;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/**
 * Validated downcalls of the native attention kernels ({@code kvs_attn_decode}, {@code kvs_attn_prefill}) and
 * of the read-bandwidth probe.
 *
 * <p><b>Paged K/V.</b> For KV head {@code h}, its rows {@code 0 .. lengths[h]-1} live in the blocks whose raw
 * addresses are {@code keyBlocks[offsets[h] .. offsets[h+1]-1]} (and {@code valueBlocks[...]} for V), row
 * {@code r} in block {@code r / blockRows} at row {@code r % blockRows}. {@code offsets} ({@code kvHeads + 1}
 * int64), {@code lengths} ({@code kvHeads} int64) and the two address arrays are native segments of int64.
 *
 * <p><b>Validation.</b> Every argument is checked here before the downcall, and a rejected call throws
 * {@link KernelArgumentException} without touching anything: shapes, native-ness, liveness and thread access of
 * every segment, their sizes against the shape, offsets monotone and giving every head at least
 * {@code ceil(length / blockRows)} blocks, every used block address non-zero, outputs writable and overlapping
 * no input, the scale finite and positive, threads in [1, {@value #MAX_THREADS}]. What Java cannot check is the
 * block addresses themselves: they must be addresses of live blocks of that size. That is why this class is
 * package-private: only {@link TableAttention} calls it, with address arrays it builds itself from a sequence's
 * {@link BlockTable}s while holding that sequence's read lock (so no block is freed, moved or unmapped during the
 * call). No public method anywhere takes a block address.
 *
 * <p><b>Threads.</b> {@code threads} is an upper bound: the kernels use the calling thread plus up to
 * {@code threads - 1} threads of a persistent native pool, and run short calls on the calling thread alone.
 * Calls that read little memory use a critical downcall (no thread-state transition); longer ones use a
 * normal downcall, so they never hold up a garbage-collection safepoint.
 */
final class NativeAttention {
    /** Largest thread count a call accepts. */
    static final int MAX_THREADS = 64;

    /** K+V bytes up to which a decode call is short enough (a few microseconds) for a critical downcall. */
    static final long CRITICAL_MAX_BYTES = 256 * 1024;

    private NativeAttention() {}

    /*
     * One holder class per downcall, bound on first use: each distinct signature costs the FFM linker a generated
     * stub class and its lambda forms (~10-70 ms of CPU in a fresh JVM, most of what loading the library costs), so
     * a command binds only the calls it makes (`kvslab generate`: decode and prefill, not the batch, probe or ISA
     * calls). Static finals are constants to the JIT. Every caller has checked that the library is available
     * (NativeLibrary.isAvailable() or libraryFile()) before touching a holder, so an unavailable library is a
     * KvSlabException each time and never poisons a holder.
     */
    private static final FunctionDescriptor DECODE = FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, ADDRESS, JAVA_INT);
    private static final FunctionDescriptor BATCH = FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_INT);

    private static final class Decode {
        static final MethodHandle H = bind("kvs_attn_decode", DECODE);
    }

    private static final class DecodeCritical {
        static final MethodHandle H = bind("kvs_attn_decode", DECODE, Linker.Option.critical(false));
    }

    private static final class DecodeBatch {
        static final MethodHandle H = bind("kvs_attn_decode_batch", BATCH);
    }

    private static final class DecodeBatchCritical {
        static final MethodHandle H = bind("kvs_attn_decode_batch", BATCH, Linker.Option.critical(false));
    }

    private static final class Prefill {
        static final MethodHandle H = bind("kvs_attn_prefill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT,
                ADDRESS, JAVA_INT));
    }

    private static final class Probe {
        static final MethodHandle H = bind("kvs_read_bandwidth_probe",
                FunctionDescriptor.of(JAVA_DOUBLE, ADDRESS, JAVA_LONG, JAVA_INT));
    }

    private static final class SetIsa {
        static final MethodHandle H = bind("kvs_attn_set_isa", FunctionDescriptor.of(JAVA_INT, JAVA_INT),
                Linker.Option.critical(false));
    }

    private static final class PoolThreads {
        static final MethodHandle H = bind("kvs_pool_threads", FunctionDescriptor.of(JAVA_INT));
    }

    private static MethodHandle bind(String name, FunctionDescriptor d, Linker.Option... o) {
        return LibraryDowncalls.bind(name, d, o);
    }

    /**
     * Decode attention: one query token per query head over all rows of its KV head.
     *
     * @param shape       geometry
     * @param q           {@code queryHeads * headDim} floats, query head major; not yet scaled
     * @param keyBlocks   int64 K block addresses
     * @param valueBlocks int64 V block addresses (same indexing as {@code keyBlocks})
     * @param offsets     {@code kvHeads + 1} int64: head {@code h} owns blocks {@code [offsets[h], offsets[h+1])}
     * @param lengths     {@code kvHeads} int64 row counts (0 allowed: that head's outputs are zeros)
     * @param scale       score scale, finite and {@code > 0} (usually {@code 1 / sqrt(headDim)})
     * @param out         {@code queryHeads * headDim} floats, written
     * @param lse         {@code queryHeads} floats receiving the log-sum-exp of each head's scaled scores
     *                    ({@code -Infinity} for an empty head), or {@code null} / {@link MemorySegment#NULL}
     * @param threads     at most this many threads, in [1, {@value #MAX_THREADS}]
     * @throws KernelArgumentException if any argument is rejected (see the class comment)
     * @throws KernelFailedException   if the kernel reports an error (out of memory for scratch)
     */
    static void decode(AttentionShape shape, MemorySegment q, MemorySegment keyBlocks,
                              MemorySegment valueBlocks, MemorySegment offsets, MemorySegment lengths, float scale,
                              MemorySegment out, MemorySegment lse, int threads) {
        requireShape(shape);
        long tokenBytes = shape.tokenFloats() * Float.BYTES;
        segment("q", q, tokenBytes, false);
        segment("out", out, tokenBytes, true);
        boolean withLse = lse != null && !lse.equals(MemorySegment.NULL);
        if (withLse) {
            segment("lse", lse, (long) shape.queryHeads() * Float.BYTES, true);
        }
        requireScale(scale);
        requireThreads(threads);
        long rows = validateTable(shape, keyBlocks, valueBlocks, offsets, lengths, 0);
        // fixed-arity checks: a varargs array here would be the decode step's only heap allocation
        noOverlap("out", out, q, keyBlocks, valueBlocks, offsets, lengths, null);
        if (withLse) {
            noOverlap("lse", lse, q, keyBlocks, valueBlocks, offsets, lengths, out);
        }
        if (!NativeLibrary.isAvailable()) {
            JavaAttention.decode(shape, q, keyBlocks, valueBlocks, offsets, lengths, scale, out, withLse ? lse : null);
            return;
        }
        MethodHandle mh = rows * (shape.keyRowBytes() + shape.valueRowBytes()) <= CRITICAL_MAX_BYTES ? DecodeCritical.H
                : Decode.H;
        MemorySegment lseArg = withLse ? lse : MemorySegment.NULL;
        int rc;
        try {
            rc = (int) mh.invokeExact(shape.kvHeads(), shape.group(), shape.headDim(), shape.decodeKeyArgument(),
                    shape.decodeValueArgument(), shape.blockRows(), q, keyBlocks, valueBlocks, offsets, lengths, scale, out,
                    lseArg, threads);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_decode", t);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_attn_decode", rc);
        }
    }

    /** Bytes of one {@code kvs_decode_seq} descriptor of {@code kvs_attn_decode_batch}. */
    static final long DESCRIPTOR_BYTES = 64;

    /**
     * One sequence of a batched decode: its query and outputs ({@code lse} may be null) and the block tables of the
     * layer, each with the meaning of the same-named argument of {@link #decode}.
     */
    record DecodeSlice(MemorySegment q, MemorySegment out, MemorySegment lse, MemorySegment keyBlocks,
                       MemorySegment valueBlocks, MemorySegment offsets, MemorySegment lengths) {
    }

    /**
     * Decode attention of several sequences of one geometry in one native call ({@code kvs_attn_decode_batch}):
     * each slice's {@code out}/{@code lse} come out bitwise equal to a {@link #decode} call on that slice with the
     * same {@code threads}. Every slice is validated as {@link #decode} validates its arguments; in addition no
     * output of any slice may overlap any argument of any slice, and {@code descriptors} (native scratch of at
     * least {@code slices.size() * }{@value #DESCRIPTOR_BYTES} bytes, overwritten) must overlap none of them.
     */
    static void decodeBatch(AttentionShape shape, java.util.List<DecodeSlice> slices, MemorySegment descriptors,
                            float scale, int threads) {
        requireShape(shape);
        if (slices == null) {
            throw new KernelArgumentException("slices must not be null");
        }
        int n = slices.size();
        requireScale(scale);
        requireThreads(threads);
        long tokenBytes = shape.tokenFloats() * Float.BYTES;
        long lseBytes = (long) shape.queryHeads() * Float.BYTES;
        segment("descriptors", descriptors, Math.multiplyExact(DESCRIPTOR_BYTES, (long) n), true);
        long rows = 0;
        Regions regions = new Regions(Math.multiplyExact(n, 7) + 1);
        regions.add(descriptors.asSlice(0, DESCRIPTOR_BYTES * n), true);
        for (int i = 0; i < n; i++) {
            DecodeSlice d = slices.get(i);
            if (d == null) {
                throw new KernelArgumentException("slice " + i + " must not be null");
            }
            segment("q of slice " + i, d.q(), tokenBytes, false);
            segment("out of slice " + i, d.out(), tokenBytes, true);
            boolean withLse = d.lse() != null && !d.lse().equals(MemorySegment.NULL);
            if (withLse) {
                segment("lse of slice " + i, d.lse(), lseBytes, true);
            }
            rows += validateTable(shape, d.keyBlocks(), d.valueBlocks(), d.offsets(), d.lengths(), 0);
            regions.add(d.q().asSlice(0, tokenBytes), false);
            regions.add(d.out().asSlice(0, tokenBytes), true);
            if (withLse) {
                regions.add(d.lse().asSlice(0, lseBytes), true);
            }
            regions.add(d.keyBlocks(), false);
            regions.add(d.valueBlocks(), false);
            regions.add(d.offsets(), false);
            regions.add(d.lengths(), false);
        }
        regions.requireNoWrittenOverlap();
        if (!NativeLibrary.isAvailable()) {
            for (DecodeSlice d : slices) {
                boolean withLse = d.lse() != null && !d.lse().equals(MemorySegment.NULL);
                JavaAttention.decode(shape, d.q(), d.keyBlocks(), d.valueBlocks(), d.offsets(), d.lengths(), scale,
                        d.out(), withLse ? d.lse() : null);
            }
            return;
        }
        for (int i = 0; i < n; i++) {
            DecodeSlice d = slices.get(i);
            boolean withLse = d.lse() != null && !d.lse().equals(MemorySegment.NULL);
            long at = i * DESCRIPTOR_BYTES;
            descriptors.set(JAVA_LONG, at, d.q().address());
            descriptors.set(JAVA_LONG, at + 8, d.out().address());
            descriptors.set(JAVA_LONG, at + 16, withLse ? d.lse().address() : 0L);
            descriptors.set(JAVA_LONG, at + 24, d.keyBlocks().address());
            descriptors.set(JAVA_LONG, at + 32, d.valueBlocks().address());
            descriptors.set(JAVA_LONG, at + 40, d.offsets().address());
            descriptors.set(JAVA_LONG, at + 48, d.lengths().address());
            descriptors.set(JAVA_INT, at + 56, shape.decodeKeyArgument());
            descriptors.set(JAVA_INT, at + 60, shape.decodeValueArgument());
        }
        MethodHandle mh = rows * (shape.keyRowBytes() + shape.valueRowBytes()) <= CRITICAL_MAX_BYTES
                ? DecodeBatchCritical.H : DecodeBatch.H;
        int rc;
        try {
            rc = (int) mh.invokeExact(n, descriptors, shape.kvHeads(), shape.group(), shape.headDim(),
                    shape.blockRows(), scale, threads);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_decode_batch", t);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_attn_decode_batch", rc);
        }
    }

    /**
     * Memory ranges of one call, checked together: no written range may overlap any other range. Sorted by start
     * and swept once, so a batch of n sequences costs O(n log n), not n^2 pairwise checks.
     */
    private static final class Regions {
        private final long[] start;
        private final long[] end;
        private final boolean[] written;
        private int count;

        Regions(int capacity) {
            start = new long[capacity];
            end = new long[capacity];
            written = new boolean[capacity];
        }

        void add(MemorySegment s, boolean isWritten) {
            if (s.byteSize() == 0) {
                return;
            }
            start[count] = s.address();
            end[count] = s.address() + s.byteSize();
            written[count] = isWritten;
            count++;
        }

        void requireNoWrittenOverlap() {
            int[] order = orderByStart();
            long maxEnd = Long.MIN_VALUE;
            long maxWrittenEnd = Long.MIN_VALUE;
            for (int i : order) {
                // every earlier range starts at or before this one: it overlaps iff it ends after this start
                if (start[i] < maxWrittenEnd || (written[i] && start[i] < maxEnd)) {
                    throw new KernelArgumentException("an output of the batch overlaps another argument of the call; "
                            + "outputs must not share memory with inputs or with each other");
                }
                maxEnd = Math.max(maxEnd, end[i]);
                if (written[i]) {
                    maxWrittenEnd = Math.max(maxWrittenEnd, end[i]);
                }
            }
        }

        /**
         * Indices of the ranges by start address: a shell sort on primitive ints (a call holds a few ranges per
         * sequence of the batch; boxing them for {@code Arrays.sort} with a comparator showed up at 3% of a serving
         * step). Equal starts may come in any order: the sweep treats them alike.
         */
        private int[] orderByStart() {
            int[] order = new int[count];
            for (int i = 0; i < count; i++) {
                order[i] = i;
            }
            for (int gap = count / 2; gap > 0; gap /= 2) {
                for (int i = gap; i < count; i++) {
                    int v = order[i];
                    int k = i;
                    while (k >= gap && start[order[k - gap]] > start[v]) {
                        order[k] = order[k - gap];
                        k -= gap;
                    }
                    order[k] = v;
                }
            }
            return order;
        }
    }

    /**
     * Causal prefill attention for the last {@code queries} rows of every KV head: query token {@code i} of KV
     * head {@code h} sees rows {@code 0 .. lengths[h] - queries + i}.
     *
     * @param queries number of query tokens {@code n >= 1}; every {@code lengths[h]} must be {@code >= n}
     * @param q       {@code n * queryHeads * headDim} floats laid out [token][query head][dim]; not yet scaled
     * @param out     same layout as {@code q}, written
     * @see #decode for the other parameters
     */
    static void prefill(AttentionShape shape, int queries, MemorySegment q, MemorySegment keyBlocks,
                               MemorySegment valueBlocks, MemorySegment offsets, MemorySegment lengths, float scale,
                               MemorySegment out, int threads) {
        requireShape(shape);
        if (queries <= 0) {
            throw new KernelArgumentException("queries must be >= 1, got " + queries);
        }
        long tokenBytes = shape.tokenFloats() * Float.BYTES;
        if (queries > Long.MAX_VALUE / tokenBytes) {
            throw new KernelArgumentException("queries (" + queries + ") x " + tokenBytes + " bytes per token overflows");
        }
        long bytes = queries * tokenBytes;
        segment("q", q, bytes, false);
        segment("out", out, bytes, true);
        requireScale(scale);
        requireThreads(threads);
        validateTable(shape, keyBlocks, valueBlocks, offsets, lengths, queries);
        noOverlap("out", out, q, keyBlocks, valueBlocks, offsets, lengths, null);
        if (!NativeLibrary.isAvailable()) {
            JavaAttention.prefill(shape, queries, q, keyBlocks, valueBlocks, offsets, lengths, scale, out);
            return;
        }
        int rc;
        try {
            rc = (int) Prefill.H.invokeExact(shape.kvHeads(), shape.group(), shape.headDim(),
                    shape.keyDtype(), shape.valueDtype(), shape.blockRows(), queries, q, keyBlocks, valueBlocks, offsets, lengths, scale,
                    out, threads);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_prefill", t);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_attn_prefill", rc);
        }
    }

    /**
     * Reads all of {@code buffer} (rounded down to 64 bytes) once with {@code threads} threads of the kernels'
     * pool and returns a checksum (the sum of its 64-bit little-endian words, modulo 2^64, as an unsigned
     * value), so the reads cannot be elided. Timing it gives the read bandwidth the kernels can hope for.
     */
    static double readBandwidthProbe(MemorySegment buffer, int threads) {
        segment("buffer", buffer, 64, false);
        requireThreads(threads);
        NativeLibrary.libraryFile();   // fails with the reason when the library is unavailable
        try {
            return (double) Probe.H.invokeExact(buffer, buffer.byteSize(), threads);
        } catch (Throwable t) {
            throw rethrow("kvs_read_bandwidth_probe", t);
        }
    }

    /** Forces the AVX2 kernels ({@code level} 1) or the best the CPU has (0); returns 1 (AVX2) or 2 (AVX-512). */
    static int setInstructionSet(int level) {
        NativeLibrary.libraryFile();
        try {
            return (int) SetIsa.H.invokeExact(level);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_set_isa", t);
        }
    }

    /** Worker threads the native pool has started so far. */
    static int poolThreads() {
        NativeLibrary.libraryFile();
        try {
            return (int) PoolThreads.H.invokeExact();
        } catch (Throwable t) {
            throw rethrow("kvs_pool_threads", t);
        }
    }

    // ---------------------------------------------------------------- validation

    private static void requireShape(AttentionShape shape) {
        if (shape == null) {
            throw new KernelArgumentException("shape must not be null");
        }
    }

    private static void requireScale(float scale) {
        if (!(scale > 0) || Float.isInfinite(scale)) {
            throw new KernelArgumentException("scale must be finite and > 0 (usually 1/sqrt(headDim)), got " + scale);
        }
    }

    private static void requireThreads(int threads) {
        if (threads < 1 || threads > MAX_THREADS) {
            throw new KernelArgumentException("threads must be in [1, " + MAX_THREADS + "], got " + threads);
        }
    }

    /** A native, live segment accessible from this thread, of at least minBytes, writable if written. */
    private static void segment(String name, MemorySegment s, long minBytes, boolean written) {
        if (s == null) {
            throw new KernelArgumentException(name + " must not be null");
        }
        if (!s.isNative()) {
            throw new KernelArgumentException(name + " must be a native (off-heap) segment, got a heap segment");
        }
        if (!s.scope().isAlive()) {
            throw new KernelArgumentException(name + " belongs to a closed arena");
        }
        if (!s.isAccessibleBy(Thread.currentThread())) {
            throw new KernelArgumentException(name + " is confined to another thread");
        }
        if (written && s.isReadOnly()) {
            throw new KernelArgumentException(name + " is written by the kernel but is read-only");
        }
        if (s.byteSize() < minBytes) {
            throw new KernelArgumentException(name + " must hold at least " + minBytes + " bytes for this shape, got "
                    + s.byteSize());
        }
    }

    private static void noOverlap(String name, MemorySegment written, MemorySegment a, MemorySegment b,
                                  MemorySegment c, MemorySegment d, MemorySegment e, MemorySegment f) {
        if (overlaps(written, a) || overlaps(written, b) || overlaps(written, c) || overlaps(written, d)
                || overlaps(written, e) || overlaps(written, f)) {
            throw new KernelArgumentException(name + " overlaps another argument of the call; outputs must "
                    + "not share memory with inputs or with each other");
        }
    }

    private static boolean overlaps(MemorySegment written, MemorySegment other) {
        return other != null && written.asOverlappingSlice(other).isPresent();
    }

    private static void noOverlap(String name, MemorySegment written, MemorySegment... others) {
        for (MemorySegment o : others) {
            if (written.asOverlappingSlice(o).isPresent()) {
                throw new KernelArgumentException(name + " overlaps another argument of the call; outputs must "
                        + "not share memory with inputs or with each other");
            }
        }
    }

    /**
     * Checks the block table of every head and returns the total number of rows. minLength is the least
     * length a head may have (prefill needs lengths >= queries).
     */
    private static long validateTable(AttentionShape shape, MemorySegment keyBlocks, MemorySegment valueBlocks,
                                      MemorySegment offsets, MemorySegment lengths, int minLength) {
        int heads = shape.kvHeads();
        segment("offsets", offsets, (heads + 1L) * Long.BYTES, false);
        segment("lengths", lengths, (long) heads * Long.BYTES, false);
        segment("keyBlocks", keyBlocks, 0, false);
        segment("valueBlocks", valueBlocks, 0, false);
        long keyCount = keyBlocks.byteSize() / Long.BYTES;
        long valueCount = valueBlocks.byteSize() / Long.BYTES;
        long blockRows = shape.blockRows();
        long total = 0;
        long prev = offsets.get(JAVA_LONG_UNALIGNED, 0);
        if (prev < 0) {
            throw new KernelArgumentException("offsets[0] must be >= 0, got " + prev);
        }
        for (int h = 0; h < heads; h++) {
            long next = offsets.get(JAVA_LONG_UNALIGNED, (h + 1L) * Long.BYTES);
            long len = lengths.get(JAVA_LONG_UNALIGNED, (long) h * Long.BYTES);
            if (len < minLength) {
                throw new KernelArgumentException("lengths[" + h + "] must be >= " + minLength
                        + (minLength > 0 ? " (the number of queries: prefill attends the last rows)" : "")
                        + ", got " + len);
            }
            if (next < prev) {
                throw new KernelArgumentException("offsets must be non-decreasing, but offsets[" + (h + 1) + "] = "
                        + next + " < offsets[" + h + "] = " + prev);
            }
            if (next > keyCount || next > valueCount) {
                throw new KernelArgumentException("offsets[" + (h + 1) + "] = " + next + " exceeds the block arrays ("
                        + keyCount + " K and " + valueCount + " V addresses)");
            }
            long needed = len / blockRows + (len % blockRows != 0 ? 1 : 0);
            if (next - prev < needed) {
                throw new KernelArgumentException("head " + h + " has " + len + " rows, which need " + needed
                        + " blocks of " + blockRows + " rows, but offsets give it " + (next - prev));
            }
            for (long b = prev; b < prev + needed; b++) {
                if (keyBlocks.get(JAVA_LONG_UNALIGNED, b * Long.BYTES) == 0
                        || valueBlocks.get(JAVA_LONG_UNALIGNED, b * Long.BYTES) == 0) {
                    throw new KernelArgumentException("block address " + b + " (head " + h + ") is null");
                }
            }
            total += len; // cannot overflow: len <= blocks x blockRows, and the blocks' addresses fit in memory
            prev = next;
        }
        return total;
    }

    private static RuntimeException rethrow(String kernel, Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new KvSlabException("call of " + kernel + " failed: " + t, t);
    }
}
