package io.kvslab.bench.model;

/**
 * How the forward pass multiplies activations by weight matrices: {@code out[t][i] = sum_j w[i][j] * x[t][j]} for the
 * {@code n} tokens of a chunk, W row-major {@code [rows][cols]}.
 */
public enum MatMul {
    /**
     * Plain Java loops summing each row in index order, exactly like llama2.c's {@code matmul}: reproduces the
     * reference program bit for bit, on every machine.
     */
    JAVA {
        @Override
        void multiply(float[] out, float[] x, float[] w, int n, int cols, int rows) {
            LlamaMath.matmul(out, x, w, n, cols, rows);
        }
    },
    /**
     * OpenBLAS ({@code sgemv} for one token, {@code sgemm} for a chunk) through libkvslab's {@code blas_ops.c}. Its
     * vectorised kernels sum in another order, so logits differ from llama2.c in the last bits, and the kernel
     * OpenBLAS picks depends on the CPU.
     */
    OPENBLAS {
        @Override
        void multiply(float[] out, float[] x, float[] w, int n, int cols, int rows) {
            BlasOps.matmul(out, x, w, n, cols, rows);
        }

        @Override
        void prepare() {
            BlasOps.load();
        }
    };

    /** Loads whatever the products need (the native library), so that timing starts after it. */
    void prepare() {
    }

    abstract void multiply(float[] out, float[] x, float[] w, int n, int cols, int rows);
}
