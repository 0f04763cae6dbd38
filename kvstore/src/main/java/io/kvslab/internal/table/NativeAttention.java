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
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
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
    private static final FunctionDescriptor BATCH = FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_INT);

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
            throw rethrow("kvs_attn_decode", t, q, out, lse);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_attn_decode", rc);
        }
    }

    /** Bytes of one {@code kvs_decode_seq} descriptor of {@code kvs_attn_decode_batch}. */
    static final long DESCRIPTOR_BYTES = 40;

    /*
     * The int64 region of a batched decode ("tables"): n descriptors, which this class writes, then the block
     * table of every sequence, one after the other, each laid out as
     *     offsets (kvHeads + 1) | lengths (kvHeads) | K addresses (b) | V addresses (b),   b = offsets[kvHeads]
     * with the meanings of decode's same-named arguments. The layout describes itself (each table's size follows
     * from its own offsets), so one region and a count are the whole batch: no per-sequence segment or record is
     * made per call, and no table can overlap another by construction.
     */

    /** Int64 values of one packed block table with {@code blocks} K (and as many V) addresses. */
    static long packedTableLongs(int kvHeads, long blocks) {
        return Math.addExact(2L * kvHeads + 1, Math.multiplyExact(2L, blocks));
    }

    /** Byte position of the K addresses in a packed table that starts at {@code at}. */
    static long packedKeysAt(long at, int kvHeads) {
        return at + (2L * kvHeads + 1) * Long.BYTES;
    }

    /** Byte position of the lengths in a packed table that starts at {@code at}. */
    static long packedLengthsAt(long at, int kvHeads) {
        return at + (kvHeads + 1L) * Long.BYTES;
    }

    /**
     * Decode attention of {@code n} sequences of one geometry in one native call ({@code kvs_attn_decode_batch}):
     * row {@code i} of {@code q} ({@code [n][queryHeads][headDim]} f32) attends over the {@code i}-th packed table of
     * {@code tables} into row {@code i} of {@code out} and, when {@code lse} is not null, of {@code lse}
     * ({@code [n][queryHeads]}). Each row comes out bitwise equal to a {@link #decode} call with that row's arguments
     * and the same {@code threads}. {@code tables} starts with room for the {@code n} descriptors (overwritten), then
     * holds the packed tables (see above). Every table is validated as {@link #decode} validates its arguments, plus
     * its extent within {@code tables}; {@code out} and {@code lse} may overlap nothing else. Allocates nothing.
     */
    static void decodeBatch(AttentionShape shape, int n, MemorySegment q, MemorySegment out, MemorySegment lse,
                            MemorySegment tables, float scale, int threads) {
        requireShape(shape);
        if (n < 0) {
            throw new KernelArgumentException("n must be >= 0, got " + n);
        }
        requireScale(scale);
        requireThreads(threads);
        long tokenBytes = shape.tokenFloats() * Float.BYTES;
        long lseBytes = (long) shape.queryHeads() * Float.BYTES;
        segment("q", q, Math.multiplyExact(tokenBytes, (long) n), false);
        segment("out", out, Math.multiplyExact(tokenBytes, (long) n), true);
        boolean withLse = lse != null && !lse.equals(MemorySegment.NULL);
        if (withLse) {
            segment("lse", lse, Math.multiplyExact(lseBytes, (long) n), true);
        }
        segment("tables", tables, Math.multiplyExact(DESCRIPTOR_BYTES, (long) n), true);
        noOverlap("tables", tables, q, null, null, null, null, null); // its descriptors are written
        noOverlap("out", out, q, tables, null, null, null, null);
        if (withLse) {
            noOverlap("lse", lse, q, out, tables, null, null, null);
        }
        if (tables.address() % Long.BYTES != 0) {
            throw new KernelArgumentException("tables must be 8-byte aligned, got address " + tables.address());
        }
        int heads = shape.kvHeads();
        long at = DESCRIPTOR_BYTES * n;
        long rows = 0;
        for (int i = 0; i < n; i++) {
            long blocks = packedBlocks(tables, at, heads, i);
            long keysAt = packedKeysAt(at, heads);
            long valuesAt = keysAt + blocks * Long.BYTES;
            rows += validateTable(shape, tables, keysAt, blocks, tables, valuesAt, blocks, tables, at, tables,
                    packedLengthsAt(at, heads), 0);
            at = valuesAt + blocks * Long.BYTES;
        }
        if (n == 0) {
            return;
        }
        if (!NativeLibrary.isAvailable()) {
            decodeBatchInJava(shape, n, q, out, withLse ? lse : null, tables, scale);
            return;
        }
        long base = tables.address();
        at = DESCRIPTOR_BYTES * n;
        for (int i = 0; i < n; i++) {
            long blocks = tables.get(JAVA_LONG_UNALIGNED, at + (long) heads * Long.BYTES);
            long keysAt = packedKeysAt(at, heads);
            long d = i * DESCRIPTOR_BYTES;
            tables.set(JAVA_LONG_UNALIGNED, d, base + keysAt);
            tables.set(JAVA_LONG_UNALIGNED, d + 8, base + keysAt + blocks * Long.BYTES);
            tables.set(JAVA_LONG_UNALIGNED, d + 16, base + at);
            tables.set(JAVA_LONG_UNALIGNED, d + 24, base + packedLengthsAt(at, heads));
            tables.set(JAVA_INT_UNALIGNED, d + 32, shape.decodeKeyArgument());
            tables.set(JAVA_INT_UNALIGNED, d + 36, shape.decodeValueArgument());
            at = keysAt + 2 * blocks * Long.BYTES;
        }
        MethodHandle mh = rows * (shape.keyRowBytes() + shape.valueRowBytes()) <= CRITICAL_MAX_BYTES
                ? DecodeBatchCritical.H : DecodeBatch.H;
        MemorySegment lseArg = withLse ? lse : MemorySegment.NULL;
        int rc;
        try {
            rc = (int) mh.invokeExact(n, tables, q, out, lseArg, shape.kvHeads(),
                    shape.group(), shape.headDim(), shape.blockRows(), scale, threads);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_decode_batch", t, q, out, lse);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_attn_decode_batch", rc);
        }
    }

    /**
     * The block count {@code b} of the packed table of row {@code i} at {@code at}, checked to fit in
     * {@code tables} with its addresses (so the reads that follow stay inside it).
     */
    private static long packedBlocks(MemorySegment tables, long at, int heads, int i) {
        long size = tables.byteSize();
        long headerEnd = packedKeysAt(at, heads);
        if (headerEnd > size) {
            throw new KernelArgumentException("tables holds " + size + " bytes, too few for the offsets and lengths "
                    + "of sequence " + i + " (they end at byte " + headerEnd + ")");
        }
        long blocks = tables.get(JAVA_LONG_UNALIGNED, at + (long) heads * Long.BYTES);
        if (blocks < 0 || blocks > (size - headerEnd) / (2 * Long.BYTES)) {
            throw new KernelArgumentException("sequence " + i + "'s table gives offsets[" + heads + "] = " + blocks
                    + " blocks, but tables has room for " + (size - headerEnd) / (2 * Long.BYTES) + " K and V "
                    + "addresses after its offsets and lengths");
        }
        return blocks;
    }

    /** The batch without the native library: each row through the Java kernel (slices are fine off the hot path). */
    private static void decodeBatchInJava(AttentionShape shape, int n, MemorySegment q, MemorySegment out,
                                          MemorySegment lse, MemorySegment tables, float scale) {
        int heads = shape.kvHeads();
        long tokenBytes = shape.tokenFloats() * Float.BYTES;
        long lseBytes = (long) shape.queryHeads() * Float.BYTES;
        long at = DESCRIPTOR_BYTES * n;
        for (int i = 0; i < n; i++) {
            long blocks = tables.get(JAVA_LONG_UNALIGNED, at + (long) heads * Long.BYTES);
            long keysAt = packedKeysAt(at, heads);
            long addressBytes = blocks * Long.BYTES;
            JavaAttention.decode(shape, q.asSlice(i * tokenBytes, tokenBytes), tables.asSlice(keysAt, addressBytes),
                    tables.asSlice(keysAt + addressBytes, addressBytes), tables.asSlice(at, (heads + 1L) * Long.BYTES),
                    tables.asSlice(packedLengthsAt(at, heads), (long) heads * Long.BYTES), scale,
                    out.asSlice(i * tokenBytes, tokenBytes), lse == null ? null : lse.asSlice(i * lseBytes, lseBytes));
            at = keysAt + 2 * addressBytes;
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
            throw rethrow("kvs_attn_prefill", t, q, out, null);
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
            throw rethrow("kvs_read_bandwidth_probe", t, buffer, null, null);
        }
    }

    /** Forces the AVX2 kernels ({@code level} 1) or the best the CPU has (0); returns 1 (AVX2) or 2 (AVX-512). */
    static int setInstructionSet(int level) {
        NativeLibrary.libraryFile();
        try {
            return (int) SetIsa.H.invokeExact(level);
        } catch (Throwable t) {
            throw rethrow("kvs_attn_set_isa", t, null, null, null);
        }
    }

    /** Worker threads the native pool has started so far. */
    static int poolThreads() {
        NativeLibrary.libraryFile();
        try {
            return (int) PoolThreads.H.invokeExact();
        } catch (Throwable t) {
            throw rethrow("kvs_pool_threads", t, null, null, null);
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
        return validateTable(shape, keyBlocks, 0, keyBlocks.byteSize() / Long.BYTES, valueBlocks, 0,
                valueBlocks.byteSize() / Long.BYTES, offsets, 0, lengths, 0, minLength);
    }

    /**
     * The same checks on arrays at byte positions of segments already checked: {@code keyCount} K addresses at
     * {@code keysAt}, {@code valueCount} V addresses at {@code valuesAt}, {@code kvHeads + 1} offsets at
     * {@code offsetsAt} and {@code kvHeads} lengths at {@code lengthsAt}, each within its segment.
     */
    private static long validateTable(AttentionShape shape, MemorySegment keyBlocks, long keysAt, long keyCount,
                                      MemorySegment valueBlocks, long valuesAt, long valueCount,
                                      MemorySegment offsets, long offsetsAt, MemorySegment lengths, long lengthsAt,
                                      int minLength) {
        int heads = shape.kvHeads();
        long blockRows = shape.blockRows();
        long total = 0;
        long prev = offsets.get(JAVA_LONG_UNALIGNED, offsetsAt);
        if (prev < 0) {
            throw new KernelArgumentException("offsets[0] must be >= 0, got " + prev);
        }
        for (int h = 0; h < heads; h++) {
            long next = offsets.get(JAVA_LONG_UNALIGNED, offsetsAt + (h + 1L) * Long.BYTES);
            long len = lengths.get(JAVA_LONG_UNALIGNED, lengthsAt + (long) h * Long.BYTES);
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
                if (keyBlocks.get(JAVA_LONG_UNALIGNED, keysAt + b * Long.BYTES) == 0
                        || valueBlocks.get(JAVA_LONG_UNALIGNED, valuesAt + b * Long.BYTES) == 0) {
                    throw new KernelArgumentException("block address " + b + " (head " + h + ") is null");
                }
            }
            total += len; // cannot overflow: len <= blocks x blockRows, and the blocks' addresses fit in memory
            prev = next;
        }
        return total;
    }

    private static boolean isClosed(MemorySegment s) {
        return s != null && !s.scope().isAlive();
    }

    /**
     * What a failed downcall throws. {@code a}, {@code b}, {@code c}: the caller's segments of the call (null where
     * there is none); one of them found closed means another thread closed its arena after the checks above and
     * before the linker acquired it: the same typed refusal as a segment found closed by those checks. Any other
     * {@code IllegalStateException} (an internal arena) stays what it is.
     */
    private static RuntimeException rethrow(String kernel, Throwable t, MemorySegment a, MemorySegment b,
                                            MemorySegment c) {
        if (t instanceof IllegalStateException closed && (isClosed(a) || isClosed(b) || isClosed(c))) {
            KernelArgumentException e = new KernelArgumentException("an argument of " + kernel + " belongs to an "
                    + "arena that was closed as the call began; nothing was computed");
            e.initCause(closed);
            return e;
        }
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new KvSlabException("call of " + kernel + " failed: " + t, t);
    }
}
