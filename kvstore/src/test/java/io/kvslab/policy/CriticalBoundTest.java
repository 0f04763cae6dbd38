package io.kvslab.policy;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CriticalKV's output-perturbation bound (paper Eq. 5 / Thm 3.3, spec 2.2 and 8a) on random data:
 * {@code ||A V' - A' V'||_1 <= C - (2 - 1/sigma) sum_kept A_i ||V'_i||_1} with {@code V' = V W_o^h},
 * {@code C = sum A_i ||V'_i||_1}, sigma the retained mass and A' the renormalised kept attention. Also checks that,
 * given stage 1, the two-stage selection minimises the surrogate bound over every possible stage-2 set (Thm 3.5).
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
    void stageTwoMinimisesTheSurrogateBoundOverEveryAlternative() {
        Random rnd = new Random(77);
        int checked = 0;
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
                    assertTrue(surrogate(a, vp, keep, sigma1) >= best - 1e-12,
                            "trial " + trial + ": another stage-2 set has a lower surrogate bound");
                }
            }
        }
        assertTrue(checked > 100, "only " + checked + " heads satisfied sigma' > 0.5");
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
