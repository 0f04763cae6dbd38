package io.kvslab.bench.model;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward pass's matrix product in SIMD lanes, bit for bit llama2.c's plain loop. Each lane is one output row's
 * own sum: {@code acc = acc + w[i][j] * x[j]} for j in index order, one rounding for the product and one for the
 * sum (the Vector API never fuses them), so every output equals the scalar {@link LlamaMath#matmul} whatever the
 * batch. Lanes run across output rows, never across a sum, which is what keeps the order.
 *
 * <p>The weights are repacked once ({@link #pack}) into panels of {@code 2 x lanes} output rows: for each panel,
 * {@code cols} consecutive groups of its rows' weights for column j, so the inner loop reads memory in order. A
 * tile is one panel x four tokens (eight accumulators): the panel's weights are loaded once per four rows of the
 * batch, and a decode step with n sequences reads every weight matrix n/4 times from L1/L2 instead of n times.
 *
 * <p>Needs {@code --add-modules jdk.incubator.vector}: {@link VectorMatMul#available()} says whether this class may
 * be touched at all.
 */
final class PanelMatMul {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Output rows per panel. */
    static final int PANEL = 2 * L;

    private PanelMatMul() {}

    /** Whether the lanes are real SIMD registers here (4 floats or more): otherwise the scalar loop is faster. */
    static boolean worthwhile() {
        return L >= 4;
    }

    /** W row-major {@code [rows][cols]} as panels (rows padded with zeros to a whole panel). */
    static float[] pack(float[] w, int rows, int cols) {
        int panels = (rows + PANEL - 1) / PANEL;
        float[] p = new float[Math.multiplyExact(Math.multiplyExact(panels, cols), PANEL)];
        for (int i = 0; i < rows; i++) {
            int panel = i / PANEL;
            int lane = i % PANEL;
            int base = panel * cols * PANEL + lane;
            for (int j = 0; j < cols; j++) {
                p[base + j * PANEL] = w[i * cols + j];
            }
        }
        return p;
    }

    /** out[t][i] = sum_j w[i][j] * x[t][j] for t < n, with {@code panels} = {@link #pack}(w, rows, cols). */
    static void multiply(float[] out, float[] x, float[] panels, int n, int cols, int rows) {
        int nPanels = (rows + PANEL - 1) / PANEL;
        for (int p = 0; p < nPanels; p++) {
            int i0 = p * PANEL;
            int base = p * cols * PANEL;
            int valid = Math.min(PANEL, rows - i0);
            // the last panel may be partial: its padded lanes go to a scratch array, never past the output (a
            // masked store would do, but a mask that may be null keeps C2 from keeping the vectors in registers:
            // 5x slower in a microbenchmark)
            float[] spill = valid == PANEL ? null : new float[PANEL];
            int t = 0;
            for (; t + 3 < n; t += 4) {
                FloatVector a0 = FloatVector.zero(S);
                FloatVector a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                int x0 = t * cols;
                int x1 = x0 + cols;
                int x2 = x1 + cols;
                int x3 = x2 + cols;
                for (int j = 0, wo = base; j < cols; j++, wo += PANEL) {
                    FloatVector w = FloatVector.fromArray(S, panels, wo);
                    FloatVector u = FloatVector.fromArray(S, panels, wo + L);
                    FloatVector s0 = FloatVector.broadcast(S, x[x0 + j]);
                    FloatVector s1 = FloatVector.broadcast(S, x[x1 + j]);
                    FloatVector s2 = FloatVector.broadcast(S, x[x2 + j]);
                    FloatVector s3 = FloatVector.broadcast(S, x[x3 + j]);
                    a0 = a0.add(w.mul(s0));
                    b0 = b0.add(u.mul(s0));
                    a1 = a1.add(w.mul(s1));
                    b1 = b1.add(u.mul(s1));
                    a2 = a2.add(w.mul(s2));
                    b2 = b2.add(u.mul(s2));
                    a3 = a3.add(w.mul(s3));
                    b3 = b3.add(u.mul(s3));
                }
                int o = t * rows + i0;
                store(a0, b0, out, o, spill, valid);
                store(a1, b1, out, o + rows, spill, valid);
                store(a2, b2, out, o + 2 * rows, spill, valid);
                store(a3, b3, out, o + 3 * rows, spill, valid);
            }
            for (; t < n; t++) {
                // one token: four accumulators per panel would need two panels; two chains are enough for a tail
                FloatVector a0 = FloatVector.zero(S);
                FloatVector b0 = a0;
                int x0 = t * cols;
                for (int j = 0, wo = base; j < cols; j++, wo += PANEL) {
                    FloatVector s0 = FloatVector.broadcast(S, x[x0 + j]);
                    a0 = a0.add(FloatVector.fromArray(S, panels, wo).mul(s0));
                    b0 = b0.add(FloatVector.fromArray(S, panels, wo + L).mul(s0));
                }
                store(a0, b0, out, t * rows + i0, spill, valid);
            }
        }
    }

    private static void store(FloatVector a, FloatVector b, float[] out, int o, float[] spill, int valid) {
        if (spill == null) {
            a.intoArray(out, o);
            b.intoArray(out, o + L);
        } else {
            a.intoArray(spill, 0);
            b.intoArray(spill, L);
            System.arraycopy(spill, 0, out, o, valid);
        }
    }
}
