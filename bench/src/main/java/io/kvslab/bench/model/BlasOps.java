package io.kvslab.bench.model;

import io.kvslab.internal.ffm.NativeLibrary;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Binding of {@code kvs_blas_matmul_nt} (native/src/main/c/blas_ops.c), a thin wrapper over OpenBLAS. The wrapper
 * lives in libkvslab.so because a lookup of that library finds only its own symbols and those of libraries it really
 * links; binding cblas directly would depend on the linker keeping an unused OpenBLAS dependency.
 *
 * <p>The handle is {@code critical(true)} so heap arrays go to C without a copy; the calls are short (the matrices of
 * one layer), so holding off the GC for their duration is harmless.
 */
final class BlasOps {
    private static final class Holder {
        // The bench binds its own lookup of the library file: NativeLibrary hands out no handles.
        static final MethodHandle MATMUL_NT = Linker.nativeLinker().downcallHandle(
                java.lang.foreign.SymbolLookup.libraryLookup(NativeLibrary.libraryFile(),
                        java.lang.foreign.Arena.global()).find("kvs_blas_matmul_nt").orElseThrow(),
                FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT),
                Linker.Option.critical(true));
    }

    private BlasOps() {}

    /** Loads libkvslab (extracting it on first use) and binds the wrapper. */
    static void load() {
        MethodHandle h = Holder.MATMUL_NT;
        assert h != null;
    }

    /** out[t][i] = sum_j w[i][j] * x[t][j] for t < n; validates sizes in Java before the native call. */
    static void matmul(float[] out, float[] x, float[] w, int n, int cols, int rows) {
        if (n <= 0 || cols <= 0 || rows <= 0
                || (long) n * cols > x.length || (long) rows * cols > w.length || (long) n * rows > out.length) {
            throw new IllegalArgumentException("matmul of " + n + " tokens, " + rows + "x" + cols + " weights needs x >= "
                    + (long) n * cols + ", w >= " + (long) rows * cols + ", out >= " + (long) n * rows + " floats; got "
                    + x.length + ", " + w.length + ", " + out.length);
        }
        try {
            Holder.MATMUL_NT.invokeExact(MemorySegment.ofArray(x), MemorySegment.ofArray(w), MemorySegment.ofArray(out),
                    n, cols, rows);
        } catch (Throwable t) {
            throw new IllegalStateException("kvs_blas_matmul_nt failed: " + t, t);
        }
    }
}
