package io.kvslab.internal.ffm;

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

/**
 * The fixed-signature native calls that code outside this package makes: one Java method per C function of
 * {@code kvslab.h} / {@code blas_ops.c}, so that no class hands out a symbol lookup or a downcall handle.
 *
 * <p>These are raw calls: they do not validate (the callers, {@code NativeAttention} and the model runner's BLAS
 * wrapper, check every argument first). A C function's return code is returned as is; a Java-side failure of the
 * call itself becomes a {@link KvSlabException}.
 */
public final class KernelDowncalls {
    private KernelDowncalls() {}

    /** Handles bound on first use (holder idiom); binding loads the library, failing if it is unavailable. */
    private static final class Attention {
        static final FunctionDescriptor DECODE = FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, ADDRESS, JAVA_INT);
        static final FunctionDescriptor PREFILL = FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_INT);
        static final MethodHandle DECODE_NORMAL = NativeLibrary.get().handle("kvs_attn_decode", DECODE);
        static final MethodHandle DECODE_CRITICAL = NativeLibrary.get().handle("kvs_attn_decode", DECODE,
                Linker.Option.critical(false));
        static final MethodHandle PREFILL_CALL = NativeLibrary.get().handle("kvs_attn_prefill", PREFILL);
        static final MethodHandle PROBE = NativeLibrary.get().handle("kvs_read_bandwidth_probe",
                FunctionDescriptor.of(JAVA_DOUBLE, ADDRESS, JAVA_LONG, JAVA_INT));
        static final MethodHandle SET_ISA = NativeLibrary.get().handle("kvs_attn_set_isa",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT), Linker.Option.critical(false));
        static final MethodHandle POOL_THREADS = NativeLibrary.get().handle("kvs_pool_threads",
                FunctionDescriptor.of(JAVA_INT));
    }

    private static final class Blas {
        static final MethodHandle MATMUL_NT = NativeLibrary.get().handle("kvs_blas_matmul_nt",
                FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT),
                Linker.Option.critical(true));
        static final MethodHandle GET_THREADS = NativeLibrary.get().handle("openblas_get_num_threads",
                FunctionDescriptor.of(JAVA_INT));
        static final MethodHandle SET_THREADS = NativeLibrary.get().handle("openblas_set_num_threads",
                FunctionDescriptor.ofVoid(JAVA_INT));
    }

    /**
     * {@code kvs_attn_decode}; {@code critical} picks the critical downcall (no thread-state transition: only for
     * calls of a few microseconds). Returns the C return code.
     */
    public static int attnDecode(boolean critical, int kvHeads, int group, int headDim, int dtype, int blockRows,
                                 MemorySegment q, MemorySegment keyBlocks, MemorySegment valueBlocks,
                                 MemorySegment offsets, MemorySegment lengths, float scale, MemorySegment out,
                                 MemorySegment lse, int threads) {
        NativeLibrary.get();
        try {
            return (int) (critical ? Attention.DECODE_CRITICAL : Attention.DECODE_NORMAL).invokeExact(kvHeads, group,
                    headDim, dtype, blockRows, q, keyBlocks, valueBlocks, offsets, lengths, scale, out, lse, threads);
        } catch (Throwable t) {
            throw failed("kvs_attn_decode", t);
        }
    }

    /** {@code kvs_attn_prefill}; returns the C return code. */
    public static int attnPrefill(int kvHeads, int group, int headDim, int dtype, int blockRows, int queries,
                                  MemorySegment q, MemorySegment keyBlocks, MemorySegment valueBlocks,
                                  MemorySegment offsets, MemorySegment lengths, float scale, MemorySegment out,
                                  int threads) {
        NativeLibrary.get();
        try {
            return (int) Attention.PREFILL_CALL.invokeExact(kvHeads, group, headDim, dtype, blockRows, queries, q,
                    keyBlocks, valueBlocks, offsets, lengths, scale, out, threads);
        } catch (Throwable t) {
            throw failed("kvs_attn_prefill", t);
        }
    }

    /** {@code kvs_read_bandwidth_probe} over the first {@code bytes} of {@code buffer}. */
    public static double readBandwidthProbe(MemorySegment buffer, long bytes, int threads) {
        NativeLibrary.get();
        try {
            return (double) Attention.PROBE.invokeExact(buffer, bytes, threads);
        } catch (Throwable t) {
            throw failed("kvs_read_bandwidth_probe", t);
        }
    }

    /** {@code kvs_attn_set_isa}: 1 forces AVX2, 0 the best the CPU has; returns the level now used. */
    public static int attnSetIsa(int level) {
        NativeLibrary.get();
        try {
            return (int) Attention.SET_ISA.invokeExact(level);
        } catch (Throwable t) {
            throw failed("kvs_attn_set_isa", t);
        }
    }

    /** {@code kvs_pool_threads}: worker threads the native pool has started. */
    public static int poolThreads() {
        NativeLibrary.get();
        try {
            return (int) Attention.POOL_THREADS.invokeExact();
        } catch (Throwable t) {
            throw failed("kvs_pool_threads", t);
        }
    }

    /** {@code kvs_blas_matmul_nt}: {@code out[t][i] = sum_j w[i][j] * x[t][j]}; heap segments go without a copy. */
    public static void blasMatmulNt(MemorySegment x, MemorySegment w, MemorySegment out, int n, int cols, int rows) {
        NativeLibrary.get();
        try {
            Blas.MATMUL_NT.invokeExact(x, w, out, n, cols, rows);
        } catch (Throwable t) {
            throw failed("kvs_blas_matmul_nt", t);
        }
    }

    /** OpenBLAS's current thread count. */
    public static int openBlasThreads() {
        NativeLibrary.get();
        try {
            return (int) Blas.GET_THREADS.invokeExact();
        } catch (Throwable t) {
            throw failed("openblas_get_num_threads", t);
        }
    }

    /** Sets OpenBLAS's thread count (process-wide). */
    public static void setOpenBlasThreads(int threads) {
        NativeLibrary.get();
        try {
            Blas.SET_THREADS.invokeExact(threads);
        } catch (Throwable t) {
            throw failed("openblas_set_num_threads", t);
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
