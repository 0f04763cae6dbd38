package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.bench.model.BFloat16;

/**
 * What a value reads back as after being stored in a dtype, computed independently of the store's codec: fp16 via
 * the JDK's IEEE conversion, bf16 by round-to-nearest-even on the top 16 bits ({@link BFloat16}). Checkers compare stored rows
 * against {@code rounded(generated row)} bit for bit. Q8_0 / Q4_0 rows: a port of ggml's reference quantisers
 * (groups of {@code min(32, dim)} values of one row, f16 scale), applied to the whole row.
 */
public final class StoredValues {
    private StoredValues() {}

    public static float rounded(float x, DType dtype) {
        return switch (dtype) {
            case F32 -> x;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> BFloat16.toFloat(BFloat16.fromFloat(x));
            case Q8_0, Q4_0 -> throw new IllegalArgumentException(dtype + " rounds whole groups: use round(row)");
        };
    }

    /** Rounds {@code a[from .. from + n)} in place; for quantised dtypes that range is one row of n values. */
    public static void round(float[] a, int from, int n, DType dtype) {
        if (dtype == DType.F32) {
            return;
        }
        if (dtype.isQuantized()) {
            int g = Math.min(32, n);
            for (int b = from; b < from + n; b += g) {
                quantiseGroup(a, b, g, dtype == DType.Q8_0);
            }
            return;
        }
        for (int i = from; i < from + n; i++) {
            a[i] = rounded(a[i], dtype);
        }
    }

    /** ggml q8_0 (d = amax / 127, roundf) or q4_0 (d = max / -8, min(15, (int8)(x / d + 8.5))), in place. */
    private static void quantiseGroup(float[] x, int b, int g, boolean q8) {
        float amax = 0;
        float max = 0;
        for (int j = b; j < b + g; j++) {
            if (amax < Math.abs(x[j])) {
                amax = Math.abs(x[j]);
                max = x[j];
            }
        }
        float d = q8 ? amax / 127 : max / -8;
        float id = d != 0 ? 1 / d : 0;
        float stored = Float.float16ToFloat(Float.floatToFloat16(d));
        for (int j = b; j < b + g; j++) {
            float y = x[j] * id;
            int code = q8 ? (int) Math.copySign(Math.floor(Math.abs((double) y) + 0.5), y)
                    : Math.min(15, (int) (y + 8.5f)) - 8;
            x[j] = code * stored;
        }
    }
}
