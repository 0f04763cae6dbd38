package io.kvslab.policy;

import io.kvslab.internal.ffm.OutputProjectionWeights;
import io.kvslab.internal.ffm.PolicyKernelException;
import io.kvslab.internal.ffm.PolicyKernels;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native policy kernels (sgemm + reductions) against the plain-Java references. */
class PolicyKernelsTest {
    private PolicyKernels kernels;

    @BeforeEach
    void open() {
        kernels = PolicyKernels.create();
    }

    @AfterEach
    void close() {
        kernels.close();
    }

    private static float[] gaussian(Random rnd, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * scale);
        }
        return a;
    }

    @Test
    void windowAttentionMatchesReferenceWithCausalMaskGqaAndPositionGaps() {
        Random rnd = new Random(7);
        int qHeads = 6, d = 16, g = 3, n = 300, w = 12;
        // ragged, gappy positions (as after an earlier eviction); the window queries sit at the last positions
        long[] keyPos = new long[n];
        long p = 3;
        for (int j = 0; j < n; j++) {
            p += 1 + rnd.nextInt(3);
            keyPos[j] = p;
        }
        long[] qPos = Arrays.copyOfRange(keyPos, n - w, n);
        float[] q = gaussian(rnd, w * qHeads * d, 1.0);
        float[] keys = gaussian(rnd, n * d, 1.5);
        for (int kvHead = 0; kvHead < 2; kvHead++) {
            float[] mean = new float[g * n];
            float[] last = new float[g * n];
            kernels.windowAttention(q, w, qHeads, d, kvHead * g, g, keys, n, keyPos, qPos, mean, last);
            for (int gi = 0; gi < g; gi++) {
                int qh = kvHead * g + gi;
                double[][] probs = Reference.windowProbabilities(q, qPos, qHeads, d, qh, keys, keyPos);
                double[] ref = Reference.meanWindowAttention(q, qPos, qHeads, d, qh, keys, keyPos);
                double sumLast = 0;
                for (int j = 0; j < n; j++) {
                    assertEquals(ref[j], mean[gi * n + j], 1e-5 + 1e-4 * ref[j], "mean, head " + qh + " key " + j);
                    assertEquals(probs[w - 1][j], last[gi * n + j], 1e-5 + 1e-4 * probs[w - 1][j]);
                    sumLast += last[gi * n + j];
                }
                assertEquals(1.0, sumLast, 1e-4);
                assertTrue(last[gi * n + n - 1] > 0, "the last query sees its own key");
                // the first window query must not see the later window keys
                for (int j = n - w + 1; j < n; j++) {
                    assertEquals(0.0, probs[0][j]);
                }
            }
        }
    }

    @Test
    void aQueryThatSeesNoKeyGivesZeros() {
        float[] q = {1, 0, 0, 1};
        float[] keys = {1, 1, 2, 2};
        float[] mean = new float[2];
        float[] last = new float[2];
        kernels.windowAttention(q, 1, 2, 2, 0, 1, keys, 2, new long[]{5, 6}, new long[]{4}, mean, last);
        assertArrayEquals(new float[]{0, 0}, mean);
        assertArrayEquals(new float[]{0, 0}, last);
    }

    @Test
    void valueNormsMatchReferenceAcrossTiles() {
        Random rnd = new Random(11);
        int qHeads = 4, d = 8, modelDim = 32, n = 600; // 600 rows: three sgemm tiles, the last one partial
        float[] wo = gaussian(rnd, modelDim * qHeads * d, 0.4);
        float[] values = gaussian(rnd, n * d, 1.0);
        try (OutputProjectionWeights w = kernels.uploadOutputProjection(wo, modelDim, qHeads, d)) {
            float[] out = new float[2 * n];
            kernels.valueNorms(values, n, w, 2, 2, out);
            for (int gi = 0; gi < 2; gi++) {
                double[] ref = Reference.valueNorms(values, n, d, wo, modelDim, qHeads, 2 + gi);
                for (int t = 0; t < n; t++) {
                    assertEquals(ref[t], out[gi * n + t], 1e-4 * ref[t] + 1e-5, "head " + (2 + gi) + " row " + t);
                }
            }
        }
    }

    /** Products of at least 2^24 multiply-adds per tile or head are shared over the library's worker pool, each an
     * OpenBLAS call pinned to one thread (blas_threads.c): still the reference's results, and the same bits on a
     * second call, whichever worker takes which tile. */
    @Test
    void largeProductsSharedOverWorkersMatchReference() {
        Random rnd = new Random(13);
        int qHeads = 4, d = 128, modelDim = 1024, n = 1000; // 256 x 1024 x 128 per tile: above the threshold
        float[] wo = gaussian(rnd, modelDim * qHeads * d, 0.05);
        float[] values = gaussian(rnd, n * d, 1.0);
        try (OutputProjectionWeights w = kernels.uploadOutputProjection(wo, modelDim, qHeads, d)) {
            float[] out = new float[2 * n];
            kernels.valueNorms(values, n, w, 1, 2, out);
            for (int gi = 0; gi < 2; gi++) {
                double[] ref = Reference.valueNorms(values, n, d, wo, modelDim, qHeads, 1 + gi);
                for (int t = 0; t < n; t++) {
                    assertEquals(ref[t], out[gi * n + t], 1e-4 * ref[t] + 1e-5, "head " + (1 + gi) + " row " + t);
                }
            }
            float[] again = new float[2 * n];
            kernels.valueNorms(values, n, w, 1, 2, again);
            assertArrayEquals(out, again);
        }
        int wq = 32, keysN = 4096, g = 4; // 32 x 4096 x 128 = 2^24 per head: shared
        long[] keyPos = new long[keysN];
        for (int j = 0; j < keysN; j++) {
            keyPos[j] = 2L * j;
        }
        long[] qPos = Arrays.copyOfRange(keyPos, keysN - wq, keysN);
        float[] q = gaussian(rnd, wq * g * d, 0.1);
        float[] keys = gaussian(rnd, keysN * d, 1.0);
        float[] mean = new float[g * keysN];
        float[] last = new float[g * keysN];
        kernels.windowAttention(q, wq, g, d, 0, g, keys, keysN, keyPos, qPos, mean, last);
        for (int qh = 0; qh < g; qh++) {
            double[][] probs = Reference.windowProbabilities(q, qPos, g, d, qh, keys, keyPos);
            double[] ref = Reference.meanWindowAttention(q, qPos, g, d, qh, keys, keyPos);
            for (int j = 0; j < keysN; j++) {
                assertEquals(ref[j], mean[qh * keysN + j], 1e-6 + 1e-4 * ref[j], "mean, head " + qh + " key " + j);
                assertEquals(probs[wq - 1][j], last[qh * keysN + j], 1e-6 + 1e-4 * probs[wq - 1][j]);
            }
        }
        float[] meanAgain = new float[g * keysN];
        kernels.windowAttention(q, wq, g, d, 0, g, keys, keysN, keyPos, qPos, meanAgain, null);
        assertArrayEquals(mean, meanAgain);
    }

    @Test
    void badArgumentsThrowBeforeTouchingOutputs() {
        float[] q = new float[2 * 4 * 2];
        float[] keys = new float[3 * 2];
        long[] kp = {0, 1, 2};
        long[] qp = {1, 2};
        float[] mean = new float[6];
        Arrays.fill(mean, 42f);
        // query heads out of range
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 2, 4, 2, 3, 2, keys, 3, kp, qp, mean, null));
        // keys too short
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 2, 4, 2, 0, 2, new float[5], 3, kp, qp, mean, null));
        // positions not ascending
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 2, 4, 2, 0, 2, keys, 3, new long[]{0, 2, 2}, qp, mean, null));
        // output too short
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 2, 4, 2, 0, 2, keys, 3, kp, qp, new float[5], null));
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 0, 4, 2, 0, 2, keys, 3, kp, qp, mean, null));
        for (float f : mean) {
            assertEquals(42f, f);
        }
        assertThrows(PolicyKernelException.class, () -> kernels.uploadOutputProjection(new float[7], 2, 2, 2));
        try (OutputProjectionWeights w = kernels.uploadOutputProjection(new float[16], 2, 4, 2)) {
            assertThrows(PolicyKernelException.class, () -> kernels.valueNorms(new float[3], 2, w, 0, 1, new float[2]));
            assertThrows(PolicyKernelException.class, () -> kernels.valueNorms(new float[4], 2, w, 3, 2, new float[4]));
            assertThrows(PolicyKernelException.class, () -> kernels.valueNorms(new float[4], 2, w, 0, 1, new float[1]));
        }
        OutputProjectionWeights closed = kernels.uploadOutputProjection(new float[16], 2, 4, 2);
        closed.close();
        assertThrows(PolicyKernelException.class, () -> kernels.valueNorms(new float[4], 2, closed, 0, 1, new float[2]));
        kernels.close();
        assertThrows(PolicyKernelException.class,
                () -> kernels.windowAttention(q, 2, 4, 2, 0, 2, keys, 3, kp, qp, mean, null));
    }

    @Test
    void workspaceGrowsAcrossCallsOfDifferentSizes() {
        Random rnd = new Random(3);
        for (int n : new int[]{5, 2000, 17}) {
            int d = 4, qHeads = 2;
            float[] q = gaussian(rnd, qHeads * d, 1);
            float[] keys = gaussian(rnd, n * d, 1);
            long[] kp = Fixtures.range(n);
            float[] mean = new float[n];
            kernels.windowAttention(q, 1, qHeads, d, 1, 1, keys, n, kp, new long[]{n - 1}, mean, null);
            double[] ref = Reference.meanWindowAttention(q, new long[]{n - 1}, qHeads, d, 1, keys, kp);
            double sum = 0;
            for (int j = 0; j < n; j++) {
                assertEquals(ref[j], mean[j], 1e-6 + 1e-4 * ref[j]);
                sum += mean[j];
            }
            assertTrue(Math.abs(sum - 1) < 1e-4);
        }
    }
}
