package io.kvslab.internal.ffm;

import io.kvslab.KvSlabException;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The fixed-signature native calls that code outside this package makes: one Java method per C function of
 * {@code kvslab.h} / {@code blas_ops.c}, so that no class hands out a symbol lookup or a downcall handle.
 *
 * <p>Only calls whose every pointer argument is a caller's own, size-checked segment are here: the attention
 * kernels, which take arrays of raw block addresses, are bound privately by the package-private
 * {@code io.kvslab.internal.table.NativeAttention}, which builds those arrays itself under the sequence's lock.
 * Every argument is checked here (typed exception) before the call; a C function's return code is returned as is;
 * a Java-side failure of the call itself becomes a {@link KvSlabException}.
 */
public final class KernelDowncalls {
    private KernelDowncalls() {}

    /*
     * One holder class per handle, bound on first use: every distinct signature costs the FFM linker a generated stub
     * (tens of ms of CPU in a fresh JVM), so a command binds only what it calls. Each method below calls
     * NativeLibrary.get() before touching its holder, so an unavailable library fails with its reason every time and
     * never poisons a holder.
     */
    private static final class SetIsa {
        static final MethodHandle H = NativeLibrary.get().handle("kvs_attn_set_isa",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT), Linker.Option.critical(false));
    }

    private static final class PoolThreads {
        static final MethodHandle H = NativeLibrary.get().handle("kvs_pool_threads", FunctionDescriptor.of(JAVA_INT));
    }

    private static final class MatmulNt {
        static final MethodHandle H = NativeLibrary.get().handle("kvs_blas_matmul_nt",
                FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT),
                Linker.Option.critical(true));
    }

    private static final class GetThreads {
        static final MethodHandle H = NativeLibrary.get().handle("openblas_get_num_threads",
                FunctionDescriptor.of(JAVA_INT));
    }

    private static final class SetThreads {
        static final MethodHandle H = NativeLibrary.get().handle("openblas_set_num_threads",
                FunctionDescriptor.ofVoid(JAVA_INT));
    }

    /** {@code kvs_attn_set_isa}: 1 forces AVX2, 0 the best the CPU has; returns the level now used. */
    public static int attnSetIsa(int level) {
        if (level != 0 && level != 1) {
            throw new io.kvslab.KvArgumentException("level must be 0 (best) or 1 (AVX2), got " + level);
        }
        NativeLibrary.get();
        try {
            return (int) SetIsa.H.invokeExact(level);
        } catch (Throwable t) {
            throw failed("kvs_attn_set_isa", t);
        }
    }

    /** {@code kvs_pool_threads}: worker threads the native pool has started. */
    public static int poolThreads() {
        NativeLibrary.get();
        try {
            return (int) PoolThreads.H.invokeExact();
        } catch (Throwable t) {
            throw failed("kvs_pool_threads", t);
        }
    }

    /** {@code kvs_blas_matmul_nt}: {@code out[t][i] = sum_j w[i][j] * x[t][j]}; heap segments go without a copy. */
    public static void blasMatmulNt(MemorySegment x, MemorySegment w, MemorySegment out, int n, int cols, int rows) {
        if (n < 1 || cols < 1 || rows < 1) {
            throw new io.kvslab.KvArgumentException("n, cols and rows must be >= 1, got " + n + ", " + cols + ", " + rows);
        }
        floats("x", x, Math.multiplyExact((long) n, (long) cols), false);
        floats("w", w, Math.multiplyExact((long) rows, (long) cols), false);
        floats("out", out, Math.multiplyExact((long) n, (long) rows), true);
        NativeLibrary.get();
        try {
            MatmulNt.H.invokeExact(x, w, out, n, cols, rows);
        } catch (Throwable t) {
            throw failed("kvs_blas_matmul_nt", t);
        }
    }

    /** OpenBLAS's current thread count. */
    public static int openBlasThreads() {
        NativeLibrary.get();
        try {
            return (int) GetThreads.H.invokeExact();
        } catch (Throwable t) {
            throw failed("openblas_get_num_threads", t);
        }
    }

    /** Sets OpenBLAS's thread count (process-wide). */
    public static void setOpenBlasThreads(int threads) {
        if (threads < 1 || threads > 4096) {
            throw new io.kvslab.KvArgumentException("threads must be in [1, 4096], got " + threads);
        }
        NativeLibrary.get();
        try {
            SetThreads.H.invokeExact(threads);
        } catch (Throwable t) {
            throw failed("openblas_set_num_threads", t);
        }
    }

    /** A live, accessible segment of at least {@code count} floats (writable if written). */
    private static void floats(String name, MemorySegment s, long count, boolean written) {
        if (s == null || !s.scope().isAlive() || !s.isAccessibleBy(Thread.currentThread())
                || (written && s.isReadOnly()) || s.byteSize() < Math.multiplyExact(count, (long) Float.BYTES)) {
            throw new io.kvslab.KvArgumentException(name + " must be a live, accessible" + (written ? ", writable" : "")
                    + " segment of at least " + count + " floats");
        }
    }

    private static RuntimeException failed(String function, Throwable t) {
        if (t instanceof KvSlabException k) {
            return k;
        }
        if (t instanceof ExceptionInInitializerError e && e.getCause() instanceof KvSlabException k) {
            return k;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new KvSlabException(function + " failed: " + t, t);
    }
}
