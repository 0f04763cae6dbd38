package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/** Converts fp32 rows to and from the stored element type. Stateless. */
final class RowCodec {
    /** Largest finite magnitude of IEEE half precision. */
    static final float F16_MAX = 65504f;
    /**
     * Largest float that rounds (to nearest even) to a finite bf16: 0x7F7F8000 and above round to infinity, since
     * bf16's largest finite value 0x7F7F is odd.
     */
    static final float BF16_MAX = Float.intBitsToFloat(0x7F7F7FFF);

    private RowCodec() {}

    /** Throws unless every value is finite and representable in {@code dtype} without overflowing to infinity. */
    /** Largest magnitude that stays finite when stored as {@code dtype}. */
    static float maxFinite(DType dtype) {
        return switch (dtype) {
            case F16 -> F16_MAX;
            case BF16 -> BF16_MAX;
            case F32 -> Float.MAX_VALUE;
        };
    }

    static void checkValues(String what, float[] src, int from, int count, DType dtype) {
        float max = maxFinite(dtype);
        // Fast pass: a max-of-magnitudes reduction that C2 vectorises (NaN propagates through Math.max, so a NaN
        // anywhere fails the comparison); only a rejected array is scanned again, to name its first bad element.
        float m = 0f;
        for (int i = from; i < from + count; i++) {
            m = Math.max(m, Math.abs(src[i]));
        }
        if (m <= max) {
            return;
        }
        for (int i = from; i < from + count; i++) {
            float x = src[i];
            if (!(Math.abs(x) <= max)) {
                throw new KvArgumentException(what + "[" + i + "] = " + x + " is not allowed: values must be finite"
                        + (dtype == DType.F16 ? " and within +-65504 for F16"
                        : dtype == DType.BF16 ? " and within +-" + BF16_MAX + " for BF16 (larger values round to "
                        + "infinity)" : ""));
            }
        }
    }

    /**
     * Writes {@code rows} rows of {@code dim} floats, row {@code r} read from {@code src[from + r * srcStride ..]},
     * into consecutive rows of {@code dst} from byte {@code offset}: one bulk copy into block memory for all rows
     * (a block's rows are contiguous), with the conversion loops over whole rows that C2 vectorises.
     */
    static void writeRows(float[] src, int from, int srcStride, int rows, int dim, MemorySegment dst, long offset,
                          DType dtype) {
        if (dtype == DType.F32) {
            for (int r = 0; r < rows; r++) {
                MemorySegment.copy(src, from + r * srcStride, dst, JAVA_FLOAT, offset + (long) r * dim * Float.BYTES,
                        dim);
            }
            return;
        }
        int count = rows * dim;
        short[] h = scratch(count);
        if (dtype == DType.F16) {
            for (int r = 0; r < rows; r++) {
                toF16(src, from + r * srcStride, h, r * dim, dim);
            }
        } else {
            for (int r = 0; r < rows; r++) {
                for (int i = 0, s = from + r * srcStride, d = r * dim; i < dim; i++) {
                    h[d + i] = toBf16(src[s + i]);
                }
            }
        }
        MemorySegment.copy(h, 0, dst, JAVA_SHORT, offset, count);
    }

    private static void toF16(float[] src, int from, short[] dst, int to, int n) {
        for (int i = 0; i < n; i++) {
            dst[to + i] = Float.floatToFloat16(src[from + i]);
        }
    }

    static void write(float[] src, int from, MemorySegment dst, long offset, int count, DType dtype) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, from, dst, JAVA_FLOAT, offset, count);
            case F16 -> {
                short[] h = scratch(count);
                for (int i = 0; i < count; i++) {
                    h[i] = Float.floatToFloat16(src[from + i]);
                }
                MemorySegment.copy(h, 0, dst, JAVA_SHORT, offset, count);
            }
            case BF16 -> {
                short[] h = scratch(count);
                for (int i = 0; i < count; i++) {
                    h[i] = toBf16(src[from + i]);
                }
                MemorySegment.copy(h, 0, dst, JAVA_SHORT, offset, count);
            }
        }
    }

    /** Per-thread conversion buffer: one bulk copy per row instead of one bounds-checked store per element. */
    private static final ThreadLocal<short[]> SCRATCH = ThreadLocal.withInitial(() -> new short[256]);

    private static short[] scratch(int count) {
        short[] h = SCRATCH.get();
        if (h.length < count) {
            h = new short[Math.max(count, h.length * 2)];
            SCRATCH.set(h);
        }
        return h;
    }

    static void read(MemorySegment src, long offset, float[] dst, int to, int count, DType dtype) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, JAVA_FLOAT, offset, dst, to, count);
            case F16 -> {
                short[] h = scratch(count);
                MemorySegment.copy(src, JAVA_SHORT, offset, h, 0, count);
                for (int i = 0; i < count; i++) {
                    dst[to + i] = Float.float16ToFloat(h[i]);
                }
            }
            case BF16 -> {
                short[] h = scratch(count);
                MemorySegment.copy(src, JAVA_SHORT, offset, h, 0, count);
                for (int i = 0; i < count; i++) {
                    dst[to + i] = fromBf16(h[i]);
                }
            }
        }
    }

    /** bf16 with round-to-nearest-even on the dropped 16 bits (finite inputs only). */
    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    static float fromBf16(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }
}
