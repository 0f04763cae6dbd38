package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The synthetic data has the attention structure it claims: sinks, heavy hitters, local windows. */
class StructuredKvTest {
    private static final KvLayout LAYOUT = KvLayout.of(2, 8, 2, 128, DType.F32);
    private static final StructuredKv GEN = new StructuredKv(LAYOUT, 3, StructuredKv.Shape.realistic());

    @Test
    void rowsAreAPureFunctionOfSaltLayerHeadAndPosition() {
        float[] a = new float[128];
        float[] b = new float[128];
        GEN.keyRow(5, 1, 1, 777, a, 0);
        new StructuredKv(LAYOUT, 3, StructuredKv.Shape.realistic()).keyRow(5, 1, 1, 777, b, 0);
        assertArrayEquals(a, b);
        GEN.keyRow(6, 1, 1, 777, b, 0);
        assertFalse(java.util.Arrays.equals(a, b), "another salt must give another row");
        float[] chunk = new float[3 * 2 * 128];
        GEN.values(5, 0, new long[] {10, 11, 12}, chunk);
        GEN.valueRow(5, 0, 1, 11, a, 0);
        assertArrayEquals(a, java.util.Arrays.copyOfRange(chunk, (2 + 1) * 128, (2 + 2) * 128));
    }

    @Test
    void heavyHittersOccurAtAboutTheConfiguredRate() {
        int n = 200_000;
        int heavy = 0;
        for (int p = 0; p < n; p++) {
            heavy += GEN.isHeavyHitter(0, 1, p) ? 1 : 0;
        }
        double expected = n / 1024.0;
        assertTrue(Math.abs(heavy - expected) < 5 * Math.sqrt(expected), heavy + " heavy hitters, expected ~"
                + expected);
        assertFalse(GEN.isHeavyHitter(0, 1, 0), "a sink is not also a heavy hitter");
    }

    /** Softmax of a late query over 4096 keys: sinks, heavy hitters and the local window carry most mass. */
    @Test
    void attentionConcentratesOnSinksHeavyHittersAndTheLocalWindow() {
        int t = 4095;
        int dim = 128;
        float[] q = new float[8 * dim];
        GEN.query(0, 0, t, q);
        float[] k = new float[dim];
        int qh = 4;   // KV head 1, first head of its group
        // Its own logits and softmax on purpose: the test reads the generator's logit structure (near vs far keys),
        // which the shared ReferenceAttention does not expose; it checks the generator, not an attention.
        double[] logits = new double[t + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int p = 0; p <= t; p++) {
            GEN.keyRow(0, 0, 1, p, k, 0);
            double dot = 0;
            for (int i = 0; i < dim; i++) {
                dot += (double) q[qh * dim + i] * k[i];
            }
            logits[p] = dot / Math.sqrt(dim);
            max = Math.max(max, logits[p]);
        }
        double sum = 0;
        double sinks = 0;
        double heavy = 0;
        double local = 0;
        int heavyCount = 0;
        for (int p = 0; p <= t; p++) {
            double w = Math.exp(logits[p] - max);
            sum += w;
            if (p < 4) {
                sinks += w;
            } else if (GEN.isHeavyHitter(0, 1, p)) {
                heavy += w;
                heavyCount++;
            } else if (t - p < 32) {
                local += w;
            }
        }
        sinks /= sum;
        heavy /= sum;
        local /= sum;
        double uniform = 1.0 / (t + 1);
        assertTrue(sinks / 4 > 50 * uniform, "sinks get " + sinks + ", heavy " + heavy + ", local " + local);
        assertTrue(heavyCount > 0 && heavy / heavyCount > 10 * uniform, "heavy hitters get " + heavy);
        assertTrue(local / 32 > 5 * uniform, "the local window gets " + local);
        assertTrue(sinks + heavy + local > 0.3, "structured rows hold " + (sinks + heavy + local) + " of the mass");
        // The local logits fall off with distance: the nearest 8 keys beat keys 200..264 back, on average.
        double near = 0;
        double far = 0;
        for (int d = 0; d < 8; d++) {
            near += logits[t - d];
        }
        for (int d = 200; d < 264; d++) {
            far += GEN.isHeavyHitter(0, 1, t - d) ? 0 : logits[t - d];
        }
        assertTrue(near / 8 > far / 64 + 1, "near " + near / 8 + " vs far " + far / 64);
        assertEquals(StructuredKv.Shape.realistic(), GEN.shape());
    }
}
