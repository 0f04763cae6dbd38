package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/**
 * Plain-Java decode attention in double precision over the rows a sequence returns from {@code readKeys} and
 * {@code readValues}: the independent reference the stress tests compare the kernel against, and the attention
 * backend used when no native kernel is available. Slow (it copies every row), so use it on samples.
 */
public final class ReferenceAttention {
    private ReferenceAttention() {}

    /** Decode attention of one layer: {@code q, out: float[queryHeads * headDim]}, scale 1/sqrt(headDim). */
    public static void decode(Sequence s, int layer, float[] q, float[] out) {
        KvLayout layout = s.layout();
        int dim = layout.headDim();
        int group = layout.groupSize();
        for (int h = 0; h < layout.kvHeads(); h++) {
            int n = s.length(layer, h);
            float[] keys = new float[n * dim];
            float[] values = new float[n * dim];
            s.readKeys(layer, h, keys);
            s.readValues(layer, h, values);
            for (int j = 0; j < group; j++) {
                int qh = h * group + j;
                head(keys, values, n, dim, q, qh * dim, out, qh * dim);
            }
        }
    }

    /**
     * One query head over {@code n} rows ({@code keys, values: [n][dim]}). With no rows the output is zero (no
     * attention mass anywhere).
     */
    public static void head(float[] keys, float[] values, int n, int dim, float[] q, int qOff, float[] out,
                            int outOff) {
        double scale = 1 / Math.sqrt(dim);
        double[] logits = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int r = 0; r < n; r++) {
            double dot = 0;
            for (int i = 0; i < dim; i++) {
                dot += (double) q[qOff + i] * keys[r * dim + i];
            }
            logits[r] = dot * scale;
            max = Math.max(max, logits[r]);
        }
        double[] acc = new double[dim];
        double sum = 0;
        for (int r = 0; r < n; r++) {
            double w = Math.exp(logits[r] - max);
            sum += w;
            for (int i = 0; i < dim; i++) {
                acc[i] += w * values[r * dim + i];
            }
        }
        for (int i = 0; i < dim; i++) {
            out[outOff + i] = n == 0 ? 0f : (float) (acc[i] / sum);
        }
    }
}
