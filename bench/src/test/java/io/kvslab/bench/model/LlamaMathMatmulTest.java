package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The tiled Java matmul equals llama2.c's plain loop bit for bit, for every batch size and ragged shape. */
class LlamaMathMatmulTest {
    @Test
    void bitForBitThePlainLoop() {
        SplittableRandom r = new SplittableRandom(7);
        for (int n = 1; n <= 9; n++) {
            for (int[] shape : new int[][]{{64, 64}, {64, 172}, {172, 64}, {5, 7}, {3, 3}}) {
                int cols = shape[0];
                int rows = shape[1];
                float[] x = new float[n * cols];
                float[] w = new float[rows * cols];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) r.nextGaussian();
                }
                float[] out = new float[n * rows];
                LlamaMath.matmul(out, x, w, n, cols, rows);
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
    }
}
