package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TensorCodecTest {
    private static final int TOKENS = 5, HEADS = 3, DIM = 8;

    /** Reference: value (t, h, d) of a logical [tokens, heads, dim] array, independent of any layout. */
    private static float value(int t, int h, int d) {
        return (float) Math.sin(1.3 * t + 0.7 * h + 0.11 * d) * 40f;
    }

    /** Stores the reference values in {@code type} with the given element strides. */
    private static MemorySegment build(Arena arena, DType type, long ts, long hs, long ds, long elements) {
        MemorySegment seg = arena.allocate(elements * type.bytes());
        for (int t = 0; t < TOKENS; t++) {
            for (int h = 0; h < HEADS; h++) {
                for (int d = 0; d < DIM; d++) {
                    long i = t * ts + h * hs + d * ds;
                    float x = value(t, h, d);
                    switch (type) {
                        case F32 -> seg.set(ValueLayout.JAVA_FLOAT, i * 4, x);
                        case F16 -> seg.set(ValueLayout.JAVA_SHORT, i * 2, Float.floatToFloat16(x));
                        case BF16 -> seg.set(ValueLayout.JAVA_SHORT, i * 2, RowCodec.toBf16(x));
                        default -> throw new IllegalArgumentException("tensors are F32, F16 or BF16");
                    }
                }
            }
        }
        return seg;
    }

    private static float stored(DType type, float x) {
        return switch (type) {
            case F32 -> x;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> Float.intBitsToFloat((RowCodec.toBf16(x) & 0xFFFF) << 16);
            default -> throw new IllegalArgumentException("per-element rounding of F32, F16 or BF16 only");
        };
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void everyLayoutAndTypeLandsAsTheReference(DType store) {
        try (Arena arena = Arena.ofConfined()) {
            for (DType in : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                // HF [t, h, d]; head-major [h, t, d]; dim-strided (every other element) [t, h, 2d]
                long[][] strides = {{HEADS * DIM, DIM, 1}, {DIM, (long) TOKENS * DIM, 1}, {2L * HEADS * DIM, 2L * DIM, 2}};
                for (long[] s : strides) {
                    long elements = 2L * TOKENS * HEADS * DIM;
                    MemorySegment seg = build(arena, in, s[0], s[1], s[2], elements);
                    KvTensor t = new KvTensor(seg, in, TOKENS, HEADS, DIM, s[0], s[1], s[2]);
                    TensorCodec.check("k", t, store);
                    MemorySegment dst = arena.allocate(store.rowBytes(DIM));
                    for (int tok = 0; tok < TOKENS; tok++) {
                        for (int h = 0; h < HEADS; h++) {
                            TensorCodec.writeRow(t, tok, h, dst, 0, store);
                            float[] input = new float[DIM];
                            for (int d = 0; d < DIM; d++) {
                                input[d] = stored(in, value(tok, h, d));
                            }
                            float[] want = io.kvslab.testing.StoredValues.of(store, input, DIM);
                            float[] row = new float[DIM];
                            if (store.isQuantized()) {
                                RowCodec.read(dst, 0, row, 0, DIM, store);
                            }
                            for (int d = 0; d < DIM; d++) {
                                float expected = want[d];
                                float got = switch (store) {
                                    case F32 -> dst.get(ValueLayout.JAVA_FLOAT, 4L * d);
                                    case F16 -> Float.float16ToFloat(dst.get(ValueLayout.JAVA_SHORT, 2L * d));
                                    case BF16 -> Float.intBitsToFloat((dst.get(ValueLayout.JAVA_SHORT, 2L * d) & 0xFFFF) << 16);
                                    case Q8_0, Q4_0 -> row[d];
                                };
                                assertEquals(expected, got, 0f, in + "->" + store + " strides " + s[0] + "," + s[1] + "," + s[2]);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void rejectsValuesOutsideTheStoreRange() {
        float[] a = new float[HEADS * DIM];
        a[5] = 70000f;   // finite, but above the f16 maximum
        KvTensor t = KvTensor.of(a, 1, HEADS, DIM);
        TensorCodec.check("k", t, DType.F32);
        TensorCodec.check("k", t, DType.BF16);
        KvArgumentException e = assertThrows(KvArgumentException.class, () -> TensorCodec.check("k", t, DType.F16));
        assertTrue(e.getMessage().contains("head 0, dim 5"), e.getMessage());
        a[5] = 3.4e38f;  // rounds to bf16 infinity
        assertThrows(KvArgumentException.class, () -> TensorCodec.check("k", t, DType.BF16));
        a[5] = Float.NaN;
        assertThrows(KvArgumentException.class, () -> TensorCodec.check("k", t, DType.F32));
        assertTrue(TensorCodec.allowed(3.3895314e38f, DType.BF16));
    }

    @Test
    void rejectsShapesTheSegmentCannotHold() {
        float[] a = new float[HEADS * DIM * 2];
        assertThrows(KvArgumentException.class, () -> KvTensor.of(a, 3, HEADS, DIM));
        assertThrows(KvArgumentException.class,
                () -> new KvTensor(MemorySegment.ofArray(a), DType.F32, Integer.MAX_VALUE, HEADS, DIM, Long.MAX_VALUE / 2, 1, 1));
        assertThrows(KvArgumentException.class,
                () -> new KvTensor(MemorySegment.ofArray(a), DType.F32, 1, HEADS, DIM, 0, -1, 1));
        KvTensor ok = KvTensor.of(a, 2, HEADS, DIM);
        assertEquals(2, ok.tokens());
    }
}
