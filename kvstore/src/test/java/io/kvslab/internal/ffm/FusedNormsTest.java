package io.kvslab.internal.ffm;

import io.kvslab.policy.Reference;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Subset L1 norms through the fused kernel ({@code kvs_policy_value_norms_fused}: each product element in registers,
 * one or two FMA chains as the decoded masks say): bit for bit the whole-head call's (OpenBLAS sgemm over 256-row
 * tiles, then the reduction) and the packed tiles' (the fallback), and within a stated tolerance of a plain-Java
 * double-precision reference, at Llama-3-8B's geometry and small odd ones.
 */
class FusedNormsTest {
    /** Relative distance allowed from the double-precision reference (fp32 products of 128 terms, ~2^-24 each). */
    private static final double TOLERANCE = 1e-5;

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** Subsets of n rows: all, ~87% and ~30% at random, every slot kind's rows alone, the last tile, single rows. */
    private static List<int[]> subsets(int n, Random rnd) {
        List<int[]> out = new ArrayList<>();
        out.add(IntStream.range(0, n).toArray());
        out.add(IntStream.range(0, n).filter(r -> rnd.nextDouble() < 0.87).toArray());
        out.add(IntStream.range(0, n).filter(r -> rnd.nextDouble() < 0.3).toArray());
        int last = n / 256 * 256;
        for (int kind = 0; kind < 4; kind++) {
            int kd = kind;
            out.add(IntStream.range(0, n).filter(r -> RowPacking.kind(r % 256, Math.min(256, n - r / 256 * 256)) == kd)
                    .toArray());
        }
        out.add(IntStream.range(last, n).toArray());
        out.add(new int[] {0});
        out.add(new int[] {n - 1});
        out.add(new int[] {n > 256 ? 255 : n / 2, n - 1});
        out.removeIf(a -> a.length == 0);
        return out;
    }

    /** Fused subsets against the whole call and the tiles, bit for bit; the whole call against the reference. */
    private static void check(int d, int model, int qh, int n, int firstHead, int g, long seed) {
        assertTrue(NativeLibrary.isAvailable(), "libkvslab must load in this execution: " + NativeLibrary.unavailableReason());
        Random rnd = new Random(seed);
        float[] wo = random(rnd, model * qh * d);
        float[] v = random(rnd, n * d);
        for (boolean headMajor : new boolean[] {true, false}) {
            try (PolicyKernels k = PolicyKernels.create();
                 OutputProjectionWeights w = new OutputProjectionWeights(wo, model, qh, d, headMajor)) {
                float[] whole = new float[g * n];
                k.valueNorms(v, n, w, firstHead, g, whole);
                for (int h = 0; h < g; h++) {
                    for (int r = 0; r < n; r += Math.max(1, n / 97)) {
                        double ref = Reference.valueNorm(v, r, d, wo, model, qh, firstHead + h); // all in double, row-major W_o
                        assertTrue(Math.abs(whole[h * n + r] - ref) <= TOLERANCE * ref,
                                "head " + (firstHead + h) + " row " + r + ": " + whole[h * n + r] + " vs " + ref);
                    }
                }
                for (int[] rows : subsets(n, rnd)) {
                    float[] fused = new float[g * rows.length];
                    k.valueNormsFused(v, n, rows, w, firstHead, g, fused);
                    float[] tiles = new float[g * rows.length];
                    k.valueNorms(v, n, rows, w, firstHead, g, tiles, false);
                    float[] pub = new float[g * rows.length];
                    k.valueNorms(v, n, rows, w, firstHead, g, pub);
                    for (int h = 0; h < g; h++) {
                        for (int i = 0; i < rows.length; i++) {
                            String at = d + "x" + model + (headMajor ? " head-major" : " row-major") + ", head "
                                    + (firstHead + h) + " row " + rows[i] + " of a subset of " + rows.length;
                            int want = Float.floatToRawIntBits(whole[h * n + rows[i]]);
                            assertEquals(want, Float.floatToRawIntBits(fused[h * rows.length + i]), "fused, " + at);
                            assertEquals(want, Float.floatToRawIntBits(tiles[h * rows.length + i]), "tiles, " + at);
                            assertEquals(want, Float.floatToRawIntBits(pub[h * rows.length + i]), "public, " + at);
                        }
                    }
                }
            }
        }
        assertEquals(Boolean.TRUE, PolicyKernels.packingChecks().get("L1:" + d + "x" + model + ":fused"),
                "the public subset call checked the fused kernel and uses it");
    }

    @Test
    void llamaGeometryMatchesTheWholeCallBitForBit() {
        // 10 full tiles and a 20-row one: 12 + 8, so the 8-row kind occurs too; a group of 4 heads at head 4
        check(128, 4096, 8, 2580, 4, 4, 31);
    }

    @Test
    void llamaGeometryWithAFourRowTailMatches() {
        check(128, 4096, 8, 2600, 0, 2, 32); // last tile 40 rows: 36 + the 4-row kind
    }

    @Test
    void smallOddGeometriesMatchTheWholeCallBitForBit() {
        // modelDim not a multiple of the 6- and 3-output blocks nor of OpenBLAS's 16; rows not a multiple of 16
        check(16, 203, 6, 333, 3, 3, 33);
        check(24, 333, 5, 517, 1, 2, 34);
        check(64, 1000, 4, 1300, 0, 4, 35); // several M panels of OpenBLAS (320, 320, 192, 168 outputs)
        check(2, 50, 3, 100, 0, 3, 36);     // two terms: the decode needs several rounds to tell the chains apart
    }
}
