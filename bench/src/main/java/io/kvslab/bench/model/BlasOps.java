package io.kvslab.bench.model;

import io.kvslab.internal.ffm.KernelDowncalls;

import java.lang.foreign.MemorySegment;

/**
 * Binding of {@code kvs_blas_matmul_nt} (native/src/main/c/blas_ops.c), a thin wrapper over OpenBLAS. The wrapper
 * lives in libkvslab.so because a lookup of that library finds only its own symbols and those of libraries it really
 * links; binding cblas directly would depend on the linker keeping an unused OpenBLAS dependency.
 *
 * <p>The downcall is {@code critical(true)} so heap arrays go to C without a copy; the calls are short (the matrices of
 * one layer), so holding off the GC for their duration is harmless.
 */
final class BlasOps {
    private BlasOps() {}

    /** Loads libkvslab (extracting it on first use) and asks OpenBLAS its thread count; matmul binds on first use. */
    static void load() {
        KernelDowncalls.openBlasThreads();
    }

    /** out[t][i] = sum_j w[i][j] * x[t][j] for t < n; validates sizes in Java before the native call. */
    static void matmul(float[] out, float[] x, float[] w, int n, int cols, int rows) {
        if (n <= 0 || cols <= 0 || rows <= 0
                || (long) n * cols > x.length || (long) rows * cols > w.length || (long) n * rows > out.length) {
            throw new IllegalArgumentException("matmul of " + n + " tokens, " + rows + "x" + cols + " weights needs x >= "
                    + (long) n * cols + ", w >= " + (long) rows * cols + ", out >= " + (long) n * rows + " floats; got "
                    + x.length + ", " + w.length + ", " + out.length);
        }
        KernelDowncalls.blasMatmulNt(MemorySegment.ofArray(x), MemorySegment.ofArray(w), MemorySegment.ofArray(out),
                n, cols, rows);
    }
}
