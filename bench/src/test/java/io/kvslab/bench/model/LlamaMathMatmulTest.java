package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tiled Java matmul and the SIMD panel product equal llama2.c's plain loop bit for bit, for every batch size and
 * ragged shape.
 */
class LlamaMathMatmulTest {
    @Test
    void bitForBitThePlainLoop() {
        SplittableRandom r = new SplittableRandom(7);
        for (int n = 1; n <= 9; n++) {
            for (int[] shape : new int[][]{{64, 64}, {64, 172}, {172, 64}, {5, 7}, {3, 3}}) {
                int cols = shape[0];
                int rows = shape[1];
                float[] x = gaussian(r, n * cols);
                float[] w = gaussian(r, rows * cols);
                float[] out = new float[n * rows];
                LlamaMath.matmul(out, x, w, n, cols, rows);
                assertPlainLoopBits(out, x, w, n, cols, rows);
            }
        }
    }

    /**
     * {@link PanelMatMul}: lanes across output rows, panels padded past the last row, tiles of four tokens and a
     * tail of one to three; shapes with rows a multiple of the panel, one short of it, one past it, and smaller than
     * one lane, batches 1 to 17 (every tail and several whole tiles).
     */
    @Test
    void panelsBitForBitThePlainLoop() {
        assertTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent(),
                "the bench tests run with --add-modules jdk.incubator.vector (bench/pom.xml), so the SIMD path is tested");
        int p = PanelMatMul.PANEL;
        SplittableRandom r = new SplittableRandom(11);
        for (int n : new int[]{1, 2, 3, 4, 5, 7, 8, 9, 16, 17}) {
            for (int[] shape : new int[][]{{64, 64}, {64, 32}, {64, 172}, {172, 64}, {64, 512}, {5, 7}, {3, 3},
                    {9, p - 1}, {9, p + 1}, {1, 2 * p}}) {
                int cols = shape[0];
                int rows = shape[1];
                float[] x = gaussian(r, n * cols);
                float[] w = gaussian(r, rows * cols);
                // a sentinel past the last output: the masked stores of a partial panel must not touch it
                float[] out = new float[n * rows + 1];
                out[n * rows] = 42.0f;
                PanelMatMul.multiply(out, x, PanelMatMul.pack(w, rows, cols), n, cols, rows);
                assertPlainLoopBits(out, x, w, n, cols, rows);
                assertEquals(42.0f, out[n * rows], "n " + n + " shape " + rows + "x" + cols + ": wrote past the end");
            }
        }
    }

    private static float[] gaussian(SplittableRandom r, int length) {
        float[] a = new float[length];
        for (int i = 0; i < length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    /** Each output equals, bit for bit, llama2.c's loop: one float sum per row, in column order. */
    private static void assertPlainLoopBits(float[] out, float[] x, float[] w, int n, int cols, int rows) {
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < rows; i++) {
                float s = 0.0f;
                for (int j = 0; j < cols; j++) {
                    s += w[i * cols + j] * x[t * cols + j];
                }
                assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(out[t * rows + i]),
                        "n " + n + " shape " + rows + "x" + cols + " at [" + t + "][" + i + "]");
            }
        }
    }
}
