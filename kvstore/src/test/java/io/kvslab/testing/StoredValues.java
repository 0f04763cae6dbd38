package io.kvslab.testing;

import io.kvslab.DType;

/**
 * What a store of a given dtype holds for fp32 rows, computed independently of the library's codecs: F16 by the
 * JDK's conversion, BF16 by round-to-nearest-even on the dropped 16 bits, and Q8_0 / Q4_0 by a direct port of
 * ggml's {@code quantize_row_q8_0_ref} / {@code quantize_row_q4_0_ref} and their dequantisation (groups of
 * {@code min(32, dim)} values per row, f16 scale).
 */
public final class StoredValues {
    private StoredValues() {}

    /** {@code rows} (consecutive rows of {@code dim} values) as the dtype stores and reads them back. */
    public static float[] of(DType dt, float[] rows, int dim) {
        float[] out = new float[rows.length];
        for (int r = 0; r + dim <= rows.length; r += dim) {
            row(dt, rows, r, dim, out);
        }
        return out;
    }

    private static void row(DType dt, float[] x, int from, int dim, float[] out) {
        switch (dt) {
            case F32 -> System.arraycopy(x, from, out, from, dim);
            case F16 -> {
                for (int i = 0; i < dim; i++) {
                    out[from + i] = Float.float16ToFloat(Float.floatToFloat16(x[from + i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < dim; i++) {
                    int bits = Float.floatToRawIntBits(x[from + i]);
                    int lsb = (bits >>> 16) & 1;
                    out[from + i] = Float.intBitsToFloat((bits + 0x7FFF + lsb) & 0xFFFF0000);
                }
            }
            case Q8_0, Q4_0 -> {
                int qk = Math.min(32, dim);
                for (int b = from; b < from + dim; b += qk) {
                    if (dt == DType.Q8_0) {
                        q8(x, b, qk, out);
                    } else {
                        q4(x, b, qk, out);
                    }
                }
            }
        }
    }

    /** ggml: d = amax / ((1 << 7) - 1); id = d ? 1/d : 0; qs[j] = roundf(x[j] * id); y = qs * fp16(d). */
    private static void q8(float[] x, int b, int qk, float[] out) {
        float amax = 0.0f;
        for (int j = 0; j < qk; j++) {
            float v = x[b + j];
            amax = Math.max(amax, Math.abs(v));
        }
        final float d = amax / ((1 << 7) - 1);
        final float id = d != 0 ? 1.0f / d : 0.0f;
        float dh = Float.float16ToFloat(Float.floatToFloat16(d));
        for (int j = 0; j < qk; j++) {
            float x0 = x[b + j] * id;
            // C roundf: half away from zero
            int q = (int) (x0 >= 0 ? Math.floor(x0 + 0.5d) : -Math.floor(-x0 + 0.5d));
            out[b + j] = q * dh;
        }
    }

    /**
     * ggml: the value of largest magnitude {@code max} (sign kept); d = max / -8; id = d ? 1/d : 0;
     * xi = MIN(15, (int8_t)(x * id + 8.5f)); y = (xi - 8) * fp16(d).
     */
    private static void q4(float[] x, int b, int qk, float[] out) {
        float amax = 0.0f;
        float max = 0.0f;
        for (int j = 0; j < qk; j++) {
            final float v = x[b + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        final float d = max / -8;
        final float id = d != 0 ? 1.0f / d : 0.0f;
        float dh = Float.float16ToFloat(Float.floatToFloat16(d));
        for (int j = 0; j < qk; j++) {
            float x0 = x[b + j] * id;
            int xi = Math.min(15, (int) (x0 + 8.5f));
            out[b + j] = (xi - 8) * dh;
        }
    }
}
