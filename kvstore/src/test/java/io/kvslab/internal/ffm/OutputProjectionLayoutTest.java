package io.kvslab.internal.ffm;

import io.kvslab.policy.Reference;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * W_o's off-heap copy is head-major ({@code [queryHeads][modelDim][headDim]}, each head's slice contiguous) since
 * {@code pol6}; before, it kept the caller's row-major layout. The kernels must give the same bits from both: the
 * value norms (every row, and a subset through {@link RowPacking}) and the Gram matrices, at Llama-3-8B's geometry
 * (the benchmark's) and at a small one; and the plain-Java path must read the head-major copy back in the caller's
 * layout. The norms are also checked against the explicit product in double, so that equal bits are not equal
 * nonsense.
 */
class OutputProjectionLayoutTest {

    @Test
    void headMajorCopyReadsBackAsTheCallersArray() {
        float[] wo = random(new SplittableRandom(1), 24 * 3 * 8);
        try (OutputProjectionWeights rowMajor = new OutputProjectionWeights(wo, 24, 3, 8, false);
             OutputProjectionWeights headMajor = new OutputProjectionWeights(wo, 24, 3, 8)) {
            assertArrayEquals(wo, rowMajor.rowMajor());
            assertArrayEquals(wo, headMajor.rowMajor());
            // head 2's row 5 starts at (2 * 24 + 5) * 8 in the head-major copy
            float[] copy = headMajor.segment().toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
            for (int j = 0; j < 8; j++) {
                assertEquals(wo[5 * 24 + 2 * 8 + j], copy[(2 * 24 + 5) * 8 + j]);
            }
        }
    }

    @Test
    void llamaGeometryNormsAndGramAreBitIdenticalInBothLayouts() {
        sameBits(4096, 32, 128, 4, 4, 700);
    }

    @Test
    void smallGeometryNormsAndGramAreBitIdenticalInBothLayouts() {
        sameBits(48, 8, 16, 2, 4, 300);
    }

    private static void sameBits(int modelDim, int heads, int d, int firstHead, int group, int rows) {
        assertTrue(NativeLibrary.isAvailable(), "the layouts matter to the native kernels only, and libkvslab must load in this execution: " + NativeLibrary.unavailableReason());
        SplittableRandom rnd = new SplittableRandom(modelDim * 31L + heads);
        float[] wo = random(rnd, modelDim * heads * d);
        float[] values = random(rnd, rows * d);
        int[] some = IntStream.range(0, rows).filter(r -> rnd.nextDouble() < 0.87).toArray();
        try (PolicyKernels k = PolicyKernels.create();
             OutputProjectionWeights rowMajor = new OutputProjectionWeights(wo, modelDim, heads, d, false);
             OutputProjectionWeights headMajor = k.uploadOutputProjection(wo, modelDim, heads, d)) {
            float[] before = new float[group * rows];
            float[] after = new float[group * rows];
            k.valueNorms(values, rows, rowMajor, firstHead, group, before);
            k.valueNorms(values, rows, headMajor, firstHead, group, after);
            assertBits(before, after, "L1 norms, every row");
            for (int gi = 0; gi < group; gi++) {
                for (int t = 0; t < rows; t += 37) {
                    double ref = Reference.valueNorm(values, t, d, wo, modelDim, heads, firstHead + gi);
                    assertEquals(ref, after[gi * rows + t], 1e-4 * ref, "head " + gi + " row " + t);
                }
            }
            float[] partBefore = new float[group * some.length];
            float[] partAfter = new float[group * some.length];
            k.valueNorms(values, rows, some, rowMajor, firstHead, group, partBefore);
            k.valueNorms(values, rows, some, headMajor, firstHead, group, partAfter);
            assertBits(partBefore, partAfter, "L1 norms, 87% of the rows");
            assertBits(k.gram(rowMajor).matrices(), k.gram(headMajor).matrices(), "Gram matrices");
            assertBits(k.gram(rowMajor).matrices(), k.gram(wo, modelDim, heads, d).matrices(), "Gram via the array");
        }
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        int differ = 0;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                differ++;
            }
        }
        assertEquals(0, differ, what + ": entries whose bits differ between the layouts, of " + expected.length);
        assertTrue(expected.length > 0);
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        return a;
    }
}
