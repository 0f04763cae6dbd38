package io.kvslab.internal.table;

import io.kvslab.DType;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

/**
 * The Java fallback's integer value sums ({@link AttentionShape#integerValueSums()}), as the kernel's
 * {@code kvs_value_*_iv} computes them: rows in tiles (within one block, at most {@value #TILE} rows from the block's
 * start), and per tile and group {@code j} of {@code min(32, headDim)} values the weights {@code p_r d_jr} rounded to
 * codes {@code u_r = rint((p_r / pmax) (d_jr 127 / dmax_j))} with scale {@code pmax dmax_j / 127} ({@code pmax},
 * {@code dmax_j} the tile's largest weight and largest |scale|), and the output the exact integer sum
 * {@code sum_r u_r k_rc} times that scale. Probabilities are relative to the head's global maximum here and to the
 * running one in the kernel, so a code may differ by one where a product lands near a half.
 */
final class IntegerValues {
    /** Rows per tile: the kernel's {@code KVS_TILE}. */
    static final int TILE = 64;

    private IntegerValues() {}

    static double softmaxValues(JavaAttention.Blocks b, long first, long rows, double[] scores, double[] acc) {
        int dim = acc.length;
        int n = Math.min(32, dim);
        int groups = dim / n;
        DType type = b.valueDtype;
        long groupBytes = type.rowBytes(n);
        double max = Double.NEGATIVE_INFINITY;
        for (double s : scores) {
            max = Math.max(max, s);
        }
        double sum = 0;
        float[] p = new float[TILE];
        float[] d = new float[TILE];
        int[] u = new int[TILE];
        long r0 = 0;
        while (r0 < rows) {
            long blockEnd = (r0 / b.blockRows + 1) * b.blockRows;
            long tileEnd = Math.min(Math.min(rows, blockEnd), r0 + TILE); // tiles start at a block or 64 rows on
            int t = (int) (tileEnd - r0);
            float pmax = 0;
            for (int r = 0; r < t; r++) {
                p[r] = (float) Math.exp(scores[(int) (r0 + r)] - max);
                pmax = Math.max(pmax, p[r]);
                sum += p[r];
            }
            float pinv = pmax != 0 ? 1.0f / pmax : 0;
            for (int j = 0; j < groups; j++) {
                float dmax = 0;
                for (int r = 0; r < t; r++) {
                    MemorySegment block = b.value(first, r0 + r);
                    d[r] = Float.float16ToFloat(block.get(JAVA_SHORT_UNALIGNED, b.valueOffset(r0 + r) + j * groupBytes));
                    dmax = Math.max(dmax, Math.abs(d[r]));
                }
                float dinv = dmax != 0 ? 127.0f / dmax : 0;
                for (int r = 0; r < t; r++) {
                    u[r] = (int) Math.rint((p[r] * pinv) * (d[r] * dinv));
                }
                float sw = pmax * dmax / 127.0f;
                for (int c = 0; c < n; c++) {
                    long dot = 0;
                    for (int r = 0; r < t; r++) {
                        long g = b.valueOffset(r0 + r) + j * groupBytes;
                        dot += (long) u[r] * JavaAttention.code(b.value(first, r0 + r), g, c, n, type);
                    }
                    acc[j * n + c] += (double) sw * dot;
                }
            }
            r0 = tileEnd;
        }
        for (int c = 0; c < dim; c++) {
            acc[c] /= sum;
        }
        return max + Math.log(sum);
    }
}
