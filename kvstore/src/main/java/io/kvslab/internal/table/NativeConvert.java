package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvSlabException;
import io.kvslab.internal.ffm.NativeLibrary;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Objects;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The downcall of {@code kvs_convert_rows}: a run of fp32 rows from a caller's array converted to f16 or bf16
 * straight into block memory. Java's bf16 rounding does not vectorise (C2 keeps the int-to-short narrowing scalar),
 * so an append of fp32 arrays into a bf16 store ran at ~0.3 of a plain copy, and both types went through a heap
 * scratch copied into the block afterwards; the native loop converts 8 values per instruction group and writes each
 * row once (see {@code convert_rows.c}). Same bits as {@link RowCodec}'s Java path (round to nearest even), which
 * stays the path when the library is unavailable or {@value #DISABLE_PROPERTY}{@code =true} (an A/B switch).
 *
 * <p>Package-private: the destination cannot be checked here, so only {@link RowCodec#writeRows} calls it, with a
 * block slice the store reserved and values it checked.
 */
final class NativeConvert {
    static final String DISABLE_PROPERTY = "kvslab.convert.java";

    private NativeConvert() {}

    /** Read on first use: a store that never converts rows never loads or binds it. */
    private static final class State {
        static final boolean ENABLED = !Boolean.getBoolean(DISABLE_PROPERTY) && NativeLibrary.isAvailable();
    }

    /** Bound on first use; critical: microseconds per call, and the source is the caller's heap array. */
    private static final class Convert {
        static final MethodHandle H = LibraryDowncalls.bind("kvs_convert_rows", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT),
                Linker.Option.critical(true));
    }

    static boolean enabled() {
        return State.ENABLED;
    }

    /**
     * Converts {@code rows} rows of {@code dim} floats, row {@code r} at {@code src[from + r * srcStride ..]}, to
     * {@code dtype} (F16 or BF16) into consecutive rows of {@code dst} from byte {@code offset}. The caller
     * checked every value; both extents are checked here, so a wrong index throws instead of reaching native code.
     */
    static void rows(float[] src, int from, int srcStride, int rows, int dim, MemorySegment dst, long offset,
                     DType dtype) {
        if (dim < 1 || srcStride < dim) {   // the Java path's contract too; the native one would refuse them
            throw new IllegalArgumentException("rows of " + dim + " values " + srcStride + " floats apart");
        }
        if (rows == 0) {
            return;
        }
        // bounds by hand, not by slicing: a slice is an object, and an append must not allocate (AppendAllocationTest)
        Objects.checkFromIndexSize(from, (long) (rows - 1) * srcStride + dim, src.length);
        Objects.checkFromIndexSize(offset, (long) rows * dim * 2, dst.byteSize());
        int rc;
        try {
            rc = (int) Convert.H.invokeExact(MemorySegment.ofArray(src), (long) from, (long) srcStride, rows, dim, dst,
                    offset, dtype.code());
        } catch (Throwable t) {
            throw t instanceof KvSlabException e ? e : new KvSlabException("kvs_convert_rows failed: " + t, t);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_convert_rows", rc);
        }
    }
}
