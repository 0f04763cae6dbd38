package io.kvslab.policy;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the CriticalKV paper bounds, and what its selection guarantees (paper Eq. 5 / Thm 3.3 and Thm 3.5, spec 2.2
 * and 8a):
 * <ul>
 *   <li>Thm 3.3, for any keep set: {@code L = ||A V' - A' V'||_1 <= theta = C - (2 - 1/sigma) sum_kept
 *       A_i ||V'_i||_1} with {@code V' = V W_o^h}, {@code C = sum A_i ||V'_i||_1}, sigma the retained mass and A' the
 *       renormalised kept attention: on random data, and on a hand-computed case where the bound is attained (so a
 *       wrong constant or sign in theta fails).</li>
 *   <li>Thm 3.5: given stage 1 with mass sigma' &gt; 0.5, the surrogate {@code theta-hat} (theta with sigma') falls as
 *       {@code sum_kept A_i ||V'_i||_1} grows, so it is minimised exactly by a top-k of {@code A_i ||V'_i||_1} among
 *       the rest. That is all the theorem says: any correct top-k of those scores passes. What the test checks is
 *       that the selector's stage 2 ranks by that product (exhaustively against every alternative stage-2 set; a
 *       stage 2 by attention alone fails it, shown on the same data), and that the true perturbation of the chosen
 *       set is below the surrogate bound of every alternative. It does not show that CriticalKV perturbs less than
 *       SnapKV on real attention: the bound is an upper bound, and on stories260K the measured per-head perturbation
 *       is lower in only a minority of heads (docs/fidelity.md).</li>
 * </ul>
 */
class CriticalBoundTest {
    private static final int D = 12;

    private static double[] softmax(Random rnd, int n, double temperature) {
        double[] a = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            a[i] = Math.exp(rnd.nextGaussian() * temperature);
            sum += a[i];
        }
        for (int i = 0; i < n; i++) {
            a[i] /= sum;
        }
        return a;
    }

    /** Rows of V W_o^h: [n][D]. */
    private static double[][] projected(Random rnd, int n, int d) {
        double[][] w = new double[D][d];
        for (double[] row : w) {
            for (int j = 0; j < d; j++) {
                row[j] = rnd.nextGaussian() * 0.5;
            }
        }
        double[][] out = new double[n][D];
        for (int t = 0; t < n; t++) {
            double[] v = new double[d];
            double scale = Math.exp(rnd.nextGaussian());
            for (int j = 0; j < d; j++) {
                v[j] = rnd.nextGaussian() * scale;
            }
            for (int k = 0; k < D; k++) {
                for (int j = 0; j < d; j++) {
                    out[t][k] += w[k][j] * v[j];
                }
            }
        }
        return out;
    }

    private static double l1(double[] x) {
        double s = 0;
        for (double v : x) {
            s += Math.abs(v);
        }
        return s;
    }

    /** Actual perturbation and bound for keep mask {@code keep}. */
    private static double[] perturbationAndBound(double[] a, double[][] vp, boolean[] keep) {
        int n = a.length;
        double sigma = 0;
        for (int i = 0; i < n; i++) {
            if (keep[i]) {
                sigma += a[i];
            }
        }
        double[] diff = new double[D];
        double c = 0;
        double keptTerm = 0;
        for (int i = 0; i < n; i++) {
            double w = a[i] - (keep[i] ? a[i] / sigma : 0);
            for (int k = 0; k < D; k++) {
                diff[k] += w * vp[i][k];
            }
            double norm = l1(vp[i]);
            c += a[i] * norm;
            if (keep[i]) {
                keptTerm += a[i] * norm;
            }
        }
        return new double[]{l1(diff), c - (2 - 1 / sigma) * keptTerm, sigma};
    }

    @Test
    void boundHoldsForRandomKeepSetsAndForTheTwoStageSelection() {
        Random rnd = new Random(2025);
        int violations = 0;
        int trials = 0;
        double worstRatio = 0;
        for (int trial = 0; trial < 4000; trial++) {
            int n = 4 + rnd.nextInt(60);
            double[] a = softmax(rnd, n, 0.5 + 3 * rnd.nextDouble());
            double[][] vp = projected(rnd, n, 4);
            boolean[] keep = new boolean[n];
            if (trial % 2 == 0) {
                // random mask with at least one kept row
                for (int i = 0; i < n; i++) {
                    keep[i] = rnd.nextBoolean();
                }
                keep[rnd.nextInt(n)] = true;
            } else {
                // the two-stage selection with a random budget
                float[] s = new float[n];
                float[] norms = new float[n];
                for (int i = 0; i < n; i++) {
                    s[i] = (float) a[i];
                    norms[i] = (float) l1(vp[i]);
                }
                int budget = 1 + rnd.nextInt(n);
                for (int r : CriticalSelector.selectHead(s, norms, new boolean[n], budget, 0.5, 1e-4)) {
                    keep[r] = true;
                }
            }
            double[] pb = perturbationAndBound(a, vp, keep);
            trials++;
            if (pb[0] > pb[1] * (1 + 1e-9) + 1e-12) {
                violations++;
            }
            if (pb[1] > 1e-9) { // keeping every row gives L = theta = 0 up to rounding
                worstRatio = Math.max(worstRatio, pb[0] / pb[1]);
            }
        }
        assertEquals(0, violations, "bound violated in " + violations + " of " + trials + " trials");
        assertTrue(worstRatio <= 1 + 1e-9, "L / theta reached " + worstRatio);
    }

    @Test
    void theBoundIsAttainedWhenEveryTermHasTheSameSign() {
        // one output dim; kept row 0 (A 0.75, V' -1), evicted row 1 (A 0.25, V' +1): o = -0.5, o' = -1, L = 0.5;
        // C = 1, sigma = 0.75, theta = 1 - (2 - 4/3) * 0.75 = 0.5: the triangle inequality is an equality here
        double[] a = {0.75, 0.25};
        double[][] vp = {{-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
        double[] pb = perturbationAndBound(a, vp, new boolean[]{true, false});
        assertEquals(0.5, pb[0], 1e-15);
        assertEquals(0.5, pb[1], 1e-15);
        // the other keep set: o' = +1, L = 1.5; theta = 1 - (2 - 4) * 0.25 = 1.5, attained too
        pb = perturbationAndBound(a, vp, new boolean[]{false, true});
        assertEquals(1.5, pb[0], 1e-15);
        assertEquals(1.5, pb[1], 1e-15);
    }

    @Test
    void stageTwoIsTheTopKOfAttentionTimesProjectedNormThatMinimisesTheSurrogate() {
        Random rnd = new Random(77);
        int checked = 0;
        int attentionOnlyWorse = 0;
        for (int trial = 0; trial < 300; trial++) {
            int n = 6 + rnd.nextInt(7);
            double[] a = softmax(rnd, n, 2.5);
            double[][] vp = projected(rnd, n, 3);
            float[] s = new float[n];
            float[] norms = new float[n];
            for (int i = 0; i < n; i++) {
                s[i] = (float) a[i];
                norms[i] = (float) l1(vp[i]);
            }
            int budget = 2 + rnd.nextInt(n - 2);
            int b1 = CriticalSelector.firstStage(budget, 0.5);
            boolean[] stage1 = RowOrder.topMask(s, null, b1);
            double sigma1 = 0;
            for (int i = 0; i < n; i++) {
                if (stage1[i]) {
                    sigma1 += a[i];
                }
            }
            if (sigma1 <= 0.5) {
                continue; // Assumption 3.4 does not hold for this head; the theorem says nothing
            }
            checked++;
            boolean[] chosen = new boolean[n];
            for (int r : CriticalSelector.selectHead(s, norms, new boolean[n], budget, 0.5, 0.0)) {
                chosen[r] = true;
            }
            double best = surrogate(a, vp, chosen, sigma1);
            double chosenPerturbation = perturbationAndBound(a, vp, chosen)[0];
            // SnapKV's top-k by attention alone: a valid stage-2 set, but not the surrogate's minimiser in general
            boolean[] byAttention = RowOrder.topMask(s, null, budget);
            if (surrogate(a, vp, byAttention, sigma1) > best + 1e-12) {
                attentionOnlyWorse++;
            }
            // every stage-2 set of the right size on top of stage 1
            int free = budget - b1;
            for (int m = 0; m < (1 << n); m++) {
                if (Integer.bitCount(m) != free) {
                    continue;
                }
                boolean[] keep = stage1.clone();
                boolean ok = true;
                for (int i = 0; i < n; i++) {
                    if ((m >> i & 1) == 1) {
                        ok &= !stage1[i];
                        keep[i] = true;
                    }
                }
                if (ok) {
                    double other = surrogate(a, vp, keep, sigma1);
                    assertTrue(other >= best - 1e-12,
                            "trial " + trial + ": another stage-2 set has a lower surrogate bound");
                    assertTrue(chosenPerturbation <= other * (1 + 1e-9) + 1e-12,
                            "trial " + trial + ": the chosen set's perturbation exceeds an alternative's bound");
                }
            }
        }
        assertTrue(checked > 100, "only " + checked + " heads satisfied sigma' > 0.5");
        // the check can fail: ranking stage 2 by attention alone loses to the two stages on many of these heads
        assertTrue(attentionOnlyWorse > checked / 10, "attention-only stage 2 was worse in only " + attentionOnlyWorse
                + " of " + checked + " heads");
    }

    /** theta-hat = C - (2 - 1/sigma') sum_kept A_i ||V'_i||_1 with sigma' the stage-1 mass. */
    private static double surrogate(double[] a, double[][] vp, boolean[] keep, double sigma1) {
        double c = 0;
        double kept = 0;
        for (int i = 0; i < a.length; i++) {
            double norm = l1(vp[i]);
            c += a[i] * norm;
            if (keep[i]) {
                kept += a[i] * norm;
            }
        }
        return c - (2 - 1 / sigma1) * kept;
    }
}
