package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Converts fp32 rows to and from the stored element type. Stateless. For the quantised types (Q8_0, Q4_0, see
 * {@link QuantCodec}) {@code count} must be exactly one row ({@code headDim} values): groups are cut per row.
 */
final class RowCodec {
    /** Largest finite magnitude of IEEE half precision. */
    static final float F16_MAX = 65504f;
    /**
     * Largest float that rounds (to nearest even) to a finite bf16: 0x7F7F8000 and above round to infinity, since
     * bf16's largest finite value 0x7F7F is odd.
     */
    static final float BF16_MAX = Float.intBitsToFloat(0x7F7F7FFF);
    /** Largest magnitude whose q8_0 group scale (amax / 127) is a finite f16. */
    static final float Q8_0_MAX = F16_MAX * 127;
    /** Largest magnitude whose q4_0 group scale (max / -8) is a finite f16. */
    static final float Q4_0_MAX = F16_MAX * 8;

    private RowCodec() {}

    /** Largest magnitude that stays finite when stored as {@code dtype}. */
    static float maxFinite(DType dtype) {
        return switch (dtype) {
            case F16 -> F16_MAX;
            case BF16 -> BF16_MAX;
            case F32 -> Float.MAX_VALUE;
            case Q8_0 -> Q8_0_MAX;
            case Q4_0 -> Q4_0_MAX;
        };
    }

    /** What the range rule of {@code dtype} is, for messages ("" for F32). */
    static String rangeNote(DType dtype) {
        return switch (dtype) {
            case F32 -> "";
            case F16 -> " and within +-65504 for F16";
            case BF16 -> " and within +-" + BF16_MAX + " for BF16 (larger values round to infinity)";
            case Q8_0 -> " and within +-" + Q8_0_MAX + " for Q8_0 (the group scale amax/127 is an f16)";
            case Q4_0 -> " and within +-" + Q4_0_MAX + " for Q4_0 (the group scale max/-8 is an f16)";
        };
    }

    /** Throws unless every value is finite and representable in {@code dtype} without overflowing to infinity. */
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
                        + rangeNote(dtype));
            }
        }
    }

    /**
     * Writes {@code rows} rows of {@code dim} floats, row {@code r} read from {@code src[from + r * srcStride ..]},
     * into consecutive rows of {@code dst} from byte {@code offset}. With the native library loaded, f16 and bf16
     * rows are converted straight into {@code dst} ({@link NativeConvert}); otherwise, and for f32 and quantised
     * types, as {@link #writeRowsJava}.
     */
    static void writeRows(float[] src, int from, int srcStride, int rows, int dim, MemorySegment dst, long offset,
                          DType dtype) {
        if ((dtype == DType.F16 || dtype == DType.BF16) && NativeConvert.enabled()) {
            // bf16's rounding does not vectorise in Java (0.3 of a plain copy), and Java converts into a heap scratch
            // that is then copied: natively each row is converted 8 values at a time and written once. (Strided f32
            // rows copied natively row by row measured slower than Java's gather and one bulk copy: they stay here.)
            NativeConvert.rows(src, from, srcStride, rows, dim, dst, offset, dtype);
            return;
        }
        writeRowsJava(src, from, srcStride, rows, dim, dst, offset, dtype);
    }

    /**
     * {@link #writeRows} in Java: one bulk copy into block memory for all rows (a block's rows are contiguous), with
     * the conversion loops over whole rows that C2 vectorises (all but bf16's narrowing). The same bytes as the
     * native conversion (tests compare them).
     */
    static void writeRowsJava(float[] src, int from, int srcStride, int rows, int dim, MemorySegment dst, long offset,
                              DType dtype) {
        if (dtype.isQuantized()) {
            long rowBytes = dtype.rowBytes(dim);
            for (int r = 0; r < rows; r++) {
                QuantCodec.write(src, from + r * srcStride, dst, offset + r * rowBytes, dim, dtype);
            }
            return;
        }
        int count = rows * dim;
        if (dtype == DType.F32) {
            if (srcStride == dim) {
                MemorySegment.copy(src, from, dst, JAVA_FLOAT, offset, count);
                return;
            }
            // Gather the strided rows on the heap (System.arraycopy: no per-call checks of a heap-to-native copy),
            // then one bulk copy of the whole run into the block.
            float[] g = floatScratch(count);
            for (int r = 0; r < rows; r++) {
                System.arraycopy(src, from + r * srcStride, g, r * dim, dim);
            }
            MemorySegment.copy(g, 0, dst, JAVA_FLOAT, offset, count);
            return;
        }
        short[] h = scratch(count);
        if (dtype == DType.F16) {
            for (int r = 0; r < rows; r++) {
                toF16(src, from + r * srcStride, h, r * dim, dim);
            }
        } else {
            for (int r = 0; r < rows; r++) {
                toBf16(src, from + r * srcStride, h, r * dim, dim);
            }
        }
        MemorySegment.copy(h, 0, dst, JAVA_SHORT, offset, count);
    }

    /**
     * {@link #toBf16(float)} over a row, in passes C2 vectorises: the float bits reach an int[] by a bulk copy (a
     * per-element {@code floatToRawIntBits} is not vectorised), the rounding runs on ints, and the int-to-short
     * narrowing is its own loop (fused with the shift it is not vectorised). Same bits as the scalar form.
     */
    static void toBf16(float[] src, int from, short[] dst, int to, int n) {
        int[] bits = intScratch(n);
        MemorySegment.copy(MemorySegment.ofArray(src), (long) from * Float.BYTES, MemorySegment.ofArray(bits), 0,
                (long) n * Float.BYTES);
        for (int i = 0; i < n; i++) {
            int b = bits[i];
            bits[i] = (b + 0x7FFF + ((b >>> 16) & 1)) >> 16;
        }
        for (int i = 0; i < n; i++) {
            dst[to + i] = (short) bits[i];
        }
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
                toBf16(src, from, h, 0, count);
                MemorySegment.copy(h, 0, dst, JAVA_SHORT, offset, count);
            }
            case Q8_0, Q4_0 -> QuantCodec.write(src, from, dst, offset, count, dtype);
        }
    }

    /** Writes {@code rows} consecutive rows of {@code dim} values (quantised types: group by group, row by row). */
    static void writeRows(float[] src, int from, MemorySegment dst, long offset, int rows, int dim, DType dtype) {
        if (!dtype.isQuantized()) {
            write(src, from, dst, offset, rows * dim, dtype);
            return;
        }
        long rowBytes = dtype.rowBytes(dim);
        for (int r = 0; r < rows; r++) {
            QuantCodec.write(src, from + r * dim, dst, offset + r * rowBytes, dim, dtype);
        }
    }

    /** Reads {@code rows} consecutive stored rows of {@code dim} values into {@code dst[to ..]}. */
    static void readRows(MemorySegment src, long offset, float[] dst, int to, int rows, int dim, DType dtype) {
        if (!dtype.isQuantized()) {
            read(src, offset, dst, to, rows * dim, dtype);
            return;
        }
        long rowBytes = dtype.rowBytes(dim);
        for (int r = 0; r < rows; r++) {
            QuantCodec.read(src, offset + r * rowBytes, dst, to + r * dim, dim, dtype);
        }
    }

    /** Per-thread conversion buffer: one bulk copy per row instead of one bounds-checked store per element. */
    private static final ThreadLocal<short[]> SCRATCH = ThreadLocal.withInitial(() -> new short[256]);

    private static final ThreadLocal<int[]> INT_SCRATCH = ThreadLocal.withInitial(() -> new int[256]);
    private static final ThreadLocal<float[]> FLOAT_SCRATCH = ThreadLocal.withInitial(() -> new float[256]);

    private static int[] intScratch(int count) {
        int[] b = INT_SCRATCH.get();
        if (b.length < count) {
            b = new int[Math.max(count, b.length * 2)];
            INT_SCRATCH.set(b);
        }
        return b;
    }

    private static float[] floatScratch(int count) {
        float[] g = FLOAT_SCRATCH.get();
        if (g.length < count) {
            g = new float[Math.max(count, g.length * 2)];
            FLOAT_SCRATCH.set(g);
        }
        return g;
    }

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
            case Q8_0, Q4_0 -> QuantCodec.read(src, offset, dst, to, count, dtype);
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
