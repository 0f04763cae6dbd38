package io.kvslab.policy;


import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Whole policies on random data against selections recomputed in the test from the spec's formulas with the
 * plain-Java reference maths (doubles, no BLAS).
 */
class ReferenceSelectionTest {
    private static final Fixtures.Shape SHAPE = Fixtures.Shape.small();
    private static final int N = 120;
    private static final int W = 16;
    private PolicyWorkspace kernels;

    @BeforeEach
    void open() {
        kernels = PolicyWorkspace.create();
    }

    @AfterEach
    void close() {
        kernels.close();
    }

    /** SnapKV score of spec 1.2, authors' order (group mean, then max-pool), for one (layer, KV head). */
    static double[] referenceSnapScores(Fixtures.Data d, int l, int h, int kernel) {
        int g = SHAPE.group();
        double[] groupMean = new double[N];
        for (int q = 0; q < g; q++) {
            double[] m = Reference.meanWindowAttention(d.queries()[l], d.windowPositions(), SHAPE.queryHeads(),
                    SHAPE.headDim(), h * g + q, d.keys()[l][h], d.positions());
            for (int j = 0; j < N; j++) {
                groupMean[j] += m[j] / g;
            }
        }
        int c = N - W;
        double[] s = groupMean.clone();
        for (int i = 0; i < c; i++) {
            double mx = Double.NEGATIVE_INFINITY;
            for (int j = Math.max(0, i - kernel / 2); j <= Math.min(c - 1, i + kernel / 2); j++) {
                mx = Math.max(mx, groupMean[j]);
            }
            s[i] = mx;
        }
        return s;
    }

    static double[] referenceGroupNorms(Fixtures.Data d, int l, int h) {
        int g = SHAPE.group();
        double[] norm = new double[N];
        for (int q = 0; q < g; q++) {
            double[] v = Reference.valueNorms(d.values()[l][h], N, SHAPE.headDim(), d.wo()[l], SHAPE.modelDim(),
                    SHAPE.queryHeads(), h * g + q);
            for (int t = 0; t < N; t++) {
                norm[t] += v[t] / g;
            }
        }
        return norm;
    }

    /** Indices of the best k among rows [0, c) by score (ties to the lower row), excluding {@code taken}. */
    static List<Integer> top(double[] score, int c, int k, boolean[] taken) {
        List<Integer> rows = new ArrayList<>();
        for (int r = 0; r < c; r++) {
            if (!taken[r]) {
                rows.add(r);
            }
        }
        rows.sort(Comparator.<Integer>comparingDouble(r -> -score[r]).thenComparingInt(r -> r));
        return rows.subList(0, Math.min(k, rows.size()));
    }

    static int[] sorted(List<Integer> rows, int from, int to) {
        List<Integer> all = new ArrayList<>(rows);
        for (int r = from; r < to; r++) {
            all.add(r);
        }
        return all.stream().mapToInt(Integer::intValue).sorted().toArray();
    }

    private static WindowAttentionScorer scoring() {
        return WindowAttentionScorer.authors().withWindow(W);
    }

    @Test
    void snapKvScoresMatchTheSpecFormula() {
        Fixtures.Data d = Fixtures.Data.random(SHAPE, N, W, 1);
        LayerContext layer = d.context().layer(1);
        float[][] s = scoring().score(layer, kernels);
        for (int h = 0; h < SHAPE.kvHeads(); h++) {
            double[] ref = referenceSnapScores(d, 1, h, 7);
            for (int r = 0; r < N; r++) {
                assertEquals(ref[r], s[h][r], 1e-6 + 1e-4 * ref[r], "head " + h + " row " + r);
            }
        }
    }

    @Test
    void snapKvAndCriticalKvSelectionsMatchTheReference() {
        Fixtures.Data d = Fixtures.Data.random(SHAPE, N, W, 2);
        SequenceContext ctx = d.context();
        Budget budget = Budget.fraction(0.3); // 36 rows: 16 window + 20 free; CriticalKV: 10 + 10
        Selection snap = Policies.snapKv(scoring()).select(ctx, budget, kernels);
        Selection crit = Policies.criticalKv(scoring(), CriticalSelector.defaults()).select(ctx, budget, kernels);
        int differs = 0;
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                double[] s = referenceSnapScores(d, l, h, 7);
                List<Integer> top20 = top(s, N - W, 20, new boolean[N]);
                assertArrayEquals(sorted(top20, N - W, N), snap.kept(l, h), "SnapKV layer " + l + " head " + h);

                boolean[] taken = new boolean[N];
                List<Integer> stage1 = top(s, N - W, 10, taken);
                for (int r : stage1) {
                    taken[r] = true;
                }
                double[] norm = referenceGroupNorms(d, l, h);
                double[] s2 = new double[N];
                for (int r = 0; r < N; r++) {
                    s2[r] = (s[r] + 1e-4) * norm[r];
                }
                List<Integer> kept = new ArrayList<>(stage1);
                kept.addAll(top(s2, N - W, 10, taken));
                int[] expected = sorted(kept, N - W, N);
                assertArrayEquals(expected, crit.kept(l, h), "CriticalKV layer " + l + " head " + h);
                if (!Arrays.equals(expected, snap.kept(l, h))) {
                    differs++;
                }
            }
        }
        // the value norms must actually change decisions on random data
        assertEquals(true, differs > 0, "CriticalKV chose the same rows as SnapKV everywhere");
    }

    /** Ada-KV of spec 1.3 recomputed over the flattened (head, row) list. */
    @Test
    void adaKvAndCriticalAdaKvMatchAFlattenedReference() {
        Fixtures.Data d = Fixtures.Data.random(SHAPE, N, W, 3);
        SequenceContext ctx = d.context();
        int budget = 40; // 16 window + 24 free per head; floor 0.2 x 24 = 4
        Selection ada = Policies.adaKv(scoring(), 0.2).select(ctx, Budget.tokens(budget), kernels);
        Selection cada = Policies.criticalAdaKv(scoring(), 0.2, CriticalSelector.defaults())
                .select(ctx, Budget.tokens(budget), kernels);
        boolean anyUneven = false;
        for (int l = 0; l < SHAPE.layers(); l++) {
            int heads = SHAPE.kvHeads();
            double[][] s = new double[heads][];
            boolean[][] taken = new boolean[heads][N];
            List<int[]> rest = new ArrayList<>();
            int[] count = new int[heads];
            for (int h = 0; h < heads; h++) {
                s[h] = referenceSnapScores(d, l, h, 7);
                for (int r : top(s[h], N - W, 4, taken[h])) {
                    taken[h][r] = true;
                    count[h]++;
                }
            }
            for (int h = 0; h < heads; h++) {
                for (int r = 0; r < N - W; r++) {
                    if (!taken[h][r]) {
                        rest.add(new int[]{h, r});
                    }
                }
            }
            final double[][] sc = s;
            rest.sort(Comparator.<int[]>comparingDouble(e -> -sc[e[0]][e[1]]).thenComparingInt(e -> e[1])
                    .thenComparingInt(e -> e[0]));
            for (int i = 0; i < heads * (24 - 4); i++) {
                int[] e = rest.get(i);
                taken[e[0]][e[1]] = true;
                count[e[0]]++;
            }
            int total = 0;
            for (int h = 0; h < heads; h++) {
                List<Integer> rows = new ArrayList<>();
                for (int r = 0; r < N - W; r++) {
                    if (taken[h][r]) {
                        rows.add(r);
                    }
                }
                assertArrayEquals(sorted(rows, N - W, N), ada.kept(l, h), "Ada-KV layer " + l + " head " + h);
                total += ada.kept(l, h).length;
                anyUneven |= ada.kept(l, h).length != budget;

                // CriticalAdaKV: the same budget per head, then the two stages inside it
                int free = count[h];
                int b1 = Math.max(1, free / 2);
                boolean[] t = new boolean[N];
                List<Integer> stage1 = top(s[h], N - W, b1, t);
                for (int r : stage1) {
                    t[r] = true;
                }
                double[] norm = referenceGroupNorms(d, l, h);
                double[] s2 = new double[N];
                for (int r = 0; r < N; r++) {
                    s2[r] = (s[h][r] + 1e-4) * norm[r];
                }
                List<Integer> kept = new ArrayList<>(stage1);
                kept.addAll(top(s2, N - W, free - b1, t));
                assertArrayEquals(sorted(kept, N - W, N), cada.kept(l, h), "CriticalAdaKV layer " + l + " head " + h);
            }
            assertEquals(heads * budget, total, "Ada-KV preserves the layer's total budget");
        }
        assertEquals(true, anyUneven, "Ada-KV gave every head the same budget: no head-wise allocation happened");
    }

    @Test
    void dbudgetKvCutMatchesTheFormulaOnReferenceAttention() {
        Fixtures.Data d = Fixtures.Data.random(new Fixtures.Shape(4, 4, 2, 8, 16), N, W, 4);
        Selection sel = Policies.dbudgetKv().select(d.context(), Budget.dynamic(), kernels);
        for (int l = 2; l < 4; l++) {
            // last prompt token's attention per query head; candidates are rows 4..N-1 oldest first
            double[][] cand = new double[4][N - 4];
            for (int qh = 0; qh < 4; qh++) {
                double[][] p = Reference.windowProbabilities(d.queries()[l], d.windowPositions(), 4, 8, qh,
                        d.keys()[l][qh / 2], d.positions());
                for (int j = 4; j < N; j++) {
                    cand[qh][j - 4] = p[W - 1][j];
                }
            }
            // code formula with the mean over query heads of per-head norms
            double base = 0;
            for (double[] c : cand) {
                double s = 0;
                for (double a : c) {
                    s += a * a;
                }
                base += Math.sqrt(s) / 4;
            }
            int cut = -1;
            for (int i = 0; i < N - 4; i++) {
                double tail = 0;
                for (double[] c : cand) {
                    double s = 0;
                    for (int j = i; j < N - 4; j++) {
                        s += c[j] * c[j];
                    }
                    tail += Math.sqrt(s) / 4;
                }
                if ((base - tail) / base <= 0.01) {
                    cut = i;
                }
            }
            int keep = 4 + (N - 4 - cut);
            assertEquals(true, keep < N, "layer " + l + ": T = 1% should drop some old rows of random attention");
            for (int h = 0; h < 2; h++) {
                assertEquals(keep, sel.kept(l, h).length, "layer " + l + " head " + h);
            }
        }
    }
}
