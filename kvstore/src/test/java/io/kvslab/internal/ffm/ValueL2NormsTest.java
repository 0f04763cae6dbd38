package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The L2 value norms from W_o's Gram matrices ({@code sqrt(v^T G_h v)}) against the explicit product {@code W_o^h v}
 * in double, on the native path (when the library loads) and on the plain-Java fallback; and the Gram matrices
 * against their definition.
 */
class ValueL2NormsTest {
    private static final int MODEL = 48;
    private static final int HEADS = 8;
    private static final int D = 16;

    @Test
    void byHand() {
        // W_o (modelDim 2, one head of dim 2) = [[1, 2], [-3, 4]]; v = (1, 1): W_o v = (3, 1), L2 norm sqrt(10)
        float[] wo = {1, 2, -3, 4};
        OutputProjectionGram g = OutputProjectionGram.inJava(wo, 2, 1, 2);
        // G = W^T W = [[10, -10], [-10, 20]]
        assertEquals(10f, g.matrices()[0]);
        assertEquals(-10f, g.matrices()[1]);
        assertEquals(-10f, g.matrices()[2]);
        assertEquals(20f, g.matrices()[3]);
        float[] out = new float[1];
        JavaPolicyKernels.valueL2Norms(new float[] {1, 1}, 1, g.matrices(), 2, 0, 1, out);
        assertEquals((float) Math.sqrt(10), out[0], 1e-6);
    }

    @Test
    void gramMatchesItsDefinitionOnBothPaths() {
        float[] wo = gaussian(new Random(3), MODEL * HEADS * D);
        double[] ref = referenceGram(wo);
        OutputProjectionGram java = OutputProjectionGram.inJava(wo, MODEL, HEADS, D);
        try (PolicyKernels k = PolicyKernels.create()) {
            OutputProjectionGram viaKernels = k.gram(wo, MODEL, HEADS, D);
            for (int i = 0; i < ref.length; i++) {
                assertEquals(ref[i], java.matrices()[i], 1e-5 * (1 + Math.abs(ref[i])), "java gram " + i);
                assertEquals(ref[i], viaKernels.matrices()[i], 1e-4 * (1 + Math.abs(ref[i])), "kernel gram " + i);
            }
        }
    }

    @Test
    void normsMatchTheExplicitProductOnBothPaths() {
        Random rnd = new Random(11);
        float[] wo = gaussian(rnd, MODEL * HEADS * D);
        // 600 rows: more than one 512-row tile of the native kernel; one row all zero (norm 0, the clamp)
        int n = 600;
        float[] values = gaussian(rnd, n * D);
        java.util.Arrays.fill(values, 5 * D, 6 * D, 0f);
        int first = 4;
        int group = 4;
        try (PolicyKernels k = PolicyKernels.create()) {
            OutputProjectionGram gram = k.gram(wo, MODEL, HEADS, D);
            float[] out = new float[group * n];
            k.valueL2Norms(values, n, gram, first, group, out);
            float[] javaOut = new float[group * n];
            JavaPolicyKernels.valueL2Norms(values, n, OutputProjectionGram.inJava(wo, MODEL, HEADS, D).matrices(), D,
                    first, group, javaOut);
            for (int gi = 0; gi < group; gi++) {
                for (int t = 0; t < n; t++) {
                    double ref = referenceNorm(values, t, wo, first + gi);
                    assertEquals(ref, out[gi * n + t], 1e-4 * ref + 1e-6, "kernel head " + gi + " row " + t);
                    assertEquals(ref, javaOut[gi * n + t], 1e-5 * ref + 1e-6, "java head " + gi + " row " + t);
                }
            }
            assertEquals(0f, out[5]);
        }
    }

    @Test
    void badArgumentsAreTyped() {
        try (PolicyKernels k = PolicyKernels.create()) {
            OutputProjectionGram gram = k.gram(new float[MODEL * HEADS * D], MODEL, HEADS, D);
            assertThrows(PolicyKernelException.class, () -> k.gram(new float[3], MODEL, HEADS, D));
            assertThrows(PolicyKernelException.class,
                    () -> k.valueL2Norms(new float[D], 1, gram, HEADS - 1, 2, new float[2]));
            assertThrows(PolicyKernelException.class, () -> k.valueL2Norms(new float[D - 1], 1, gram, 0, 1,
                    new float[1]));
            assertThrows(PolicyKernelException.class, () -> k.valueL2Norms(new float[D], 1, null, 0, 1,
                    new float[1]));
        }
    }

    /** ||W_o^h v||_2 with the product written out, in double. */
    static double referenceNorm(float[] values, int t, float[] wo, int h) {
        double s = 0;
        for (int k = 0; k < MODEL; k++) {
            double u = 0;
            for (int j = 0; j < D; j++) {
                u += (double) values[t * D + j] * wo[k * HEADS * D + h * D + j];
            }
            s += u * u;
        }
        return Math.sqrt(s);
    }

    private static double[] referenceGram(float[] wo) {
        double[] g = new double[HEADS * D * D];
        for (int h = 0; h < HEADS; h++) {
            for (int i = 0; i < D; i++) {
                for (int j = 0; j < D; j++) {
                    double s = 0;
                    for (int k = 0; k < MODEL; k++) {
                        s += (double) wo[k * HEADS * D + h * D + i] * wo[k * HEADS * D + h * D + j];
                    }
                    g[(h * D + i) * D + j] = s;
                }
            }
        }
        return g;
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }
}
