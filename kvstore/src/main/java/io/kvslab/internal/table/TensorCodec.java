package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvTensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Reads rows of a caller's {@link KvTensor} into block memory, converting the element type when the tensor's
 * differs from the store's. Validation and writing are split so that a call checks every value once, before it
 * changes anything (a rejected tensor leaves the store unchanged).
 */
public final class TensorCodec {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private TensorCodec() {}

    /**
     * Throws {@link KvArgumentException} naming the first offending element unless every value is finite and
     * representable in {@code store} without overflowing to infinity.
     */
    public static void check(String what, KvTensor t, DType store) {
        if (t.type() == DType.F16 && t.rowsContiguous() && allFiniteF16(t)) {
            return;   // every finite f16 is representable in every store type (65504 is below every maxFinite)
        }
        MemorySegment data = t.data();
        for (int tok = 0; tok < t.tokens(); tok++) {
            for (int h = 0; h < t.heads(); h++) {
                long base = t.elementOffset(tok, h, 0);
                for (int d = 0; d < t.headDim(); d++) {
                    float x = element(data, t.type(), base + d * t.dimStride());
                    if (!allowed(x, store)) {
                        throw new KvArgumentException(what + "[token " + tok + ", head " + h + ", dim " + d + "] = " + x
                                + " is not allowed: values must be finite" + rangeNote(store));
                    }
                }
            }
        }
    }

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    /** The exponent field of four f16 lanes of a little-endian long. */
    private static final long EXPONENTS = 0x7C007C007C007C00L;
    /** Added to an exponent field, carries into the lane's sign bit exactly when the field is all ones. */
    private static final long CARRY = 0x0400040004000400L;
    private static final long SIGNS = 0x8000800080008000L;

    /**
     * Whether no element of an f16 tensor with contiguous rows is an infinity or NaN (exponent field all ones),
     * four elements per 64-bit word: {@code (bits & 0x7C00) + 0x0400} reaches bit 15 only for an all-ones exponent,
     * and never carries into the next lane. The element-by-element scan of {@link #check} costs a segment read and
     * a conversion per value; this is the check of an append of f16 rows into an f16 store.
     */
    static boolean allFiniteF16(KvTensor t) {
        MemorySegment data = t.data();
        int n = t.headDim();
        int words = n / 4;
        long bad = 0;
        for (int tok = 0; tok < t.tokens(); tok++) {
            for (int h = 0; h < t.heads(); h++) {
                long at = t.elementOffset(tok, h, 0) * 2;
                for (int w = 0; w < words; w++) {
                    bad |= ((data.get(U64, at + 8L * w) & EXPONENTS) + CARRY) & SIGNS;
                }
                for (int d = 4 * words; d < n; d++) {
                    bad |= ((data.get(U16, at + 2L * d) & 0x7C00) + 0x0400) & 0x8000;
                }
            }
        }
        return bad == 0;
    }

    /** Whether {@code x} is finite and stays finite when stored as {@code store}. */
    static boolean allowed(float x, DType store) {
        return Math.abs(x) <= RowCodec.maxFinite(store);   // false for NaN
    }

    private static String rangeNote(DType store) {
        return RowCodec.rangeNote(store);
    }

    /**
     * Writes head vector {@code h} of token {@code tok} into {@code dst} at byte {@code offset} as {@code store}
     * elements. Values must have passed {@link #check}.
     */
    static void writeRow(KvTensor t, int tok, int h, MemorySegment dst, long offset, DType store) {
        long base = t.elementOffset(tok, h, 0);
        int n = t.headDim();
        MemorySegment src = t.data();
        if (t.type() == store && t.rowsContiguous()) {
            long bytes = (long) n * store.bytes();
            MemorySegment.copy(src, base * store.bytes(), dst, offset, bytes);
            return;
        }
        if (store.isQuantized()) {
            // Quantisation needs the whole row (group maxima): widen it to fp32 first, then encode group by group.
            float[] row = rowScratch(n);
            if (t.type() == DType.F32 && t.rowsContiguous()) {
                MemorySegment.copy(src, F32, base * Float.BYTES, row, 0, n);
            } else {
                for (int d = 0; d < n; d++) {
                    row[d] = element(src, t.type(), base + d * t.dimStride());
                }
            }
            QuantCodec.write(row, 0, dst, offset, n, store);
            return;
        }
        if (t.type() == DType.F32 && t.rowsContiguous()) {
            // One bulk read of the row, then the array conversion loop C2 vectorises (F16C on x86).
            float[] row = rowScratch(n);
            MemorySegment.copy(src, F32, base * Float.BYTES, row, 0, n);
            RowCodec.write(row, 0, dst, offset, n, store);
            return;
        }
        long step = t.dimStride();
        switch (store) {
            case F32 -> {
                for (int d = 0; d < n; d++) {
                    dst.set(F32, offset + 4L * d, element(src, t.type(), base + d * step));
                }
            }
            case F16 -> {
                for (int d = 0; d < n; d++) {
                    dst.set(U16, offset + 2L * d, Float.floatToFloat16(element(src, t.type(), base + d * step)));
                }
            }
            case BF16 -> {
                for (int d = 0; d < n; d++) {
                    dst.set(U16, offset + 2L * d, RowCodec.toBf16(element(src, t.type(), base + d * step)));
                }
            }
            case Q8_0, Q4_0 -> throw new IllegalStateException("quantised rows are written above");
        }
    }

    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[256]);

    private static float[] rowScratch(int n) {
        float[] r = ROW.get();
        if (r.length < n) {
            r = new float[Math.max(n, 2 * r.length)];
            ROW.set(r);
        }
        return r;
    }

    /** Element {@code index} of {@code data} read as {@code type}, widened to float. */
    static float element(MemorySegment data, DType type, long index) {
        return switch (type) {
            case F32 -> data.get(F32, index * 4);
            case F16 -> Float.float16ToFloat(data.get(U16, index * 2));
            case BF16 -> Float.intBitsToFloat((data.get(U16, index * 2) & 0xFFFF) << 16);
            case Q8_0, Q4_0 -> throw new IllegalStateException("a tensor is never quantised (KvTensor refuses it)");
        };
    }

    /** Fails with a message naming {@code what} unless the tensor has the store's head count and head size. */
    public static void checkShape(String what, KvTensor t, int heads, int headDim) {
        if (t == null) {
            throw new KvArgumentException(what + " must not be null");
        }
        if (t.heads() != heads || t.headDim() != headDim) {
            throw new KvArgumentException(what + " must have " + heads + " KV heads x headDim " + headDim
                    + ", got " + t.heads() + " x " + t.headDim());
        }
    }
}
