package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Subset L1 norms through 1,024-row packed tiles and the paired-chain kernel: the same bits as the whole-head call
 * (256-row tiles over every row), and the paired-chain kernel against a plain-Java reference of its arithmetic.
 */
class TallPackingTest {
    private static final int D = 128;
    private static final int MODEL = 4096;
    private static final int QH = 8;

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** Two fused multiply-add chains from zero (even j, odd j), added in float, |.| summed over k in double. */
    private static float pairedReference(float[] v, int row, float[] wo, int head, int d, int model, int qh) {
        double s = 0;
        for (int k = 0; k < model; k++) {
            float e = 0f;
            float o = 0f;
            for (int j = 0; j < d; j += 2) {
                e = Math.fma(v[row * d + j], wo[k * qh * d + head * d + j], e);
                o = Math.fma(v[row * d + j + 1], wo[k * qh * d + head * d + j + 1], o);
            }
            s += Math.abs(e + o);
        }
        return (float) s;
    }

    @Test
    void pairedKernelMatchesItsPlainJavaReference() {
        assertTrue(NativeLibrary.isAvailable(), "libkvslab must load in this execution: " + NativeLibrary.unavailableReason());
        Random rnd = new Random(21);
        int rows = 13; // one full group of 8 rows and a partial one
        float[] wo = random(rnd, MODEL * QH * D);
        float[] v = random(rnd, rows * D);
        try (PolicyKernels k = PolicyKernels.create();
             OutputProjectionWeights w = k.uploadOutputProjection(wo, MODEL, QH, D)) {
            float[] out = new float[2 * rows];
            k.valueNormsPaired(v, rows, w, 5, 2, out);
            for (int g = 0; g < 2; g++) {
                for (int r = 0; r < rows; r++) {
                    assertEquals(Float.floatToRawIntBits(pairedReference(v, r, wo, 5 + g, D, MODEL, QH)),
                            Float.floatToRawIntBits(out[g * rows + r]), "head " + (5 + g) + " row " + r);
                }
            }
        }
    }

    @Test
    void tallPackedSubsetsHaveTheWholeCallBits() {
        assertTrue(NativeLibrary.isAvailable(), "libkvslab must load in this execution: " + NativeLibrary.unavailableReason());
        Random rnd = new Random(22);
        int n = 2600; // ten 256-row tiles and a 40-row one (3 blocks and a group of 4)
        float[] wo = random(rnd, MODEL * QH * D);
        float[] v = random(rnd, n * D);
        int g = 4;
        try (PolicyKernels k = PolicyKernels.create();
             OutputProjectionWeights w = k.uploadOutputProjection(wo, MODEL, QH, D)) {
            float[] whole = new float[g * n];
            k.valueNorms(v, n, w, 4, g, whole);
            int[][] subsets = {
                    IntStream.range(0, n).toArray(),
                    IntStream.range(0, n).filter(r -> rnd.nextDouble() < 0.87).toArray(),
                    IntStream.range(0, n).filter(r -> r % 256 >= 252 || r % 97 == 0).toArray(), // mostly the 4-row kind
                    IntStream.range(0, n).filter(r -> r % 256 >= 252).toArray(),              // only the 4-row kind
                    {2596, 2597, 2599},
            };
            for (int[] rows : subsets) {
                float[] part = new float[g * rows.length];
                k.valueNorms(v, n, rows, w, 4, g, part, false); // the tiles, not the fused kernel
                for (int h = 0; h < g; h++) {
                    for (int i = 0; i < rows.length; i++) {
                        assertEquals(Float.floatToRawIntBits(whole[h * n + rows[i]]),
                                Float.floatToRawIntBits(part[h * rows.length + i]),
                                "head " + h + " row " + rows[i] + " of a subset of " + rows.length);
                    }
                }
            }
        }
        // on the bundled OpenBLAS's Zen kernels the tall layout reproduces the whole call (else the 256-row one ran)
        Boolean tall = PolicyKernels.packingChecks().get("L1:" + D + "x" + MODEL + ":" + PolicyKernels.NORM_PACKED_TILE);
        System.out.println("tall packing reproduces the whole call here: " + tall);
    }
}
