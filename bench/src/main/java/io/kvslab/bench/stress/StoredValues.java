package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.bench.model.BFloat16;

/**
 * What a value reads back as after being stored in a dtype, computed independently of the store's codec: fp16 via
 * the JDK's IEEE conversion, bf16 by round-to-nearest-even on the top 16 bits ({@link BFloat16}). Checkers compare stored rows
 * against {@code rounded(generated row)} bit for bit.
 */
public final class StoredValues {
    private StoredValues() {}

    public static float rounded(float x, DType dtype) {
        return switch (dtype) {
            case F32 -> x;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> BFloat16.toFloat(BFloat16.fromFloat(x));
        };
    }

    /** Rounds {@code a[from .. from + n)} in place. */
    public static void round(float[] a, int from, int n, DType dtype) {
        if (dtype == DType.F32) {
            return;
        }
        for (int i = from; i < from + n; i++) {
            a[i] = rounded(a[i], dtype);
        }
    }
}
