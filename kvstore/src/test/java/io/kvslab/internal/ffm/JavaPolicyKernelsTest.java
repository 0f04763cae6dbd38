package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The plain-Java policy kernels against hand-computed cases and against the native kernels (which are themselves
 * tested against an independent reference in io.kvslab.policy.PolicyKernelsTest).
 */
class JavaPolicyKernelsTest {

    @Test
    void windowAttentionByHand() {
        // one query (position 6) at q = (1, 0) over keys (0,0) and (ln 3 * sqrt 2, 0): scores 0 and ln 3 after the
        // 1/sqrt(2) scale, so probabilities 1/4 and 3/4; a third key at position 9 is in the future (masked)
        float k = (float) (Math.log(3) * Math.sqrt(2));
        float[] keys = {0, 0, k, 0, 5, 5};
        float[] mean = new float[3];
        float[] last = new float[3];
        JavaPolicyKernels.windowAttention(new float[] {1, 0}, 1, 1, 2, 0, 1, keys, 3, new long[] {0, 6, 9},
                new long[] {6}, (float) (1 / Math.sqrt(2)), mean, last);
        assertEquals(0.25f, mean[0], 1e-6);
        assertEquals(0.75f, mean[1], 1e-6);
        assertEquals(0f, mean[2]);
        assertEquals(0.75f, last[1], 1e-6);
    }

    @Test
    void valueNormsByHand() {
        // W_o (modelDim 2, one head of dim 2) = [[1, 2], [-3, 4]]; v = (1, 1): W_o v = (3, 1), L1 norm 4
        float[] out = new float[1];
        JavaPolicyKernels.valueNorms(new float[] {1, 1}, 1, new float[] {1, 2, -3, 4}, 2, 1, 2, 0, 1, out);
        assertEquals(4f, out[0], 1e-6);
    }

    @Test
    void matchesTheNativeKernels() {
        Random rnd = new Random(42);
        int window = 6, qHeads = 8, d = 16, rows = 50, modelDim = 24;
        float[] q = random(rnd, window * qHeads * d);
        float[] keys = random(rnd, rows * d);
        long[] keyPos = new long[rows];
        for (int i = 0; i < rows; i++) {
            keyPos[i] = 2L * i;
        }
        long[] qPos = {60, 70, 80, 90, 97, 98};
        float[] values = random(rnd, rows * d);
        float[] wo = random(rnd, modelDim * qHeads * d);
        try (PolicyKernels kernels = PolicyKernels.create();
             OutputProjectionWeights w = kernels.uploadOutputProjection(wo, modelDim, qHeads, d)) {
            float[] meanN = new float[2 * rows], lastN = new float[2 * rows];
            float[] meanJ = new float[2 * rows], lastJ = new float[2 * rows];
            kernels.windowAttention(q, window, qHeads, d, 4, 2, keys, rows, keyPos, qPos, meanN, lastN);
            JavaPolicyKernels.windowAttention(q, window, qHeads, d, 4, 2, keys, rows, keyPos, qPos,
                    (float) (1 / Math.sqrt(d)), meanJ, lastJ);
            for (int i = 0; i < meanN.length; i++) {
                assertEquals(meanN[i], meanJ[i], 1e-5, "mean " + i);
                assertEquals(lastN[i], lastJ[i], 1e-5, "last " + i);
            }
            float[] normN = new float[3 * rows], normJ = new float[3 * rows];
            kernels.valueNorms(values, rows, w, 5, 3, normN);
            JavaPolicyKernels.valueNorms(values, rows, wo, modelDim, qHeads, d, 5, 3, normJ);
            for (int i = 0; i < normN.length; i++) {
                assertEquals(normN[i], normJ[i], 1e-4 * Math.max(1, normN[i]), "norm " + i);
            }
        }
    }

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextFloat() * 2 - 1;
        }
        return a;
    }
}
