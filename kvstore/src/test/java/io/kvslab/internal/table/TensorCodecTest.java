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

    /**
     * The word-at-a-time check of f16 tensors (four elements per long) finds an infinity or NaN in any lane, in the
     * tail of a row whose length is not a multiple of four, and in any (token, head) of strided layouts, with the
     * element-by-element message; every finite f16 (largest 65504, smallest subnormal) passes for every store type.
     */
    @Test
    void f16TensorsAreCheckedForInfinityAndNanInEveryLane() {
        int dim = 7;   // one 64-bit word and a 3-element tail per row
        for (long[] st : new long[][] {{HEADS * dim, dim, 1}, {dim, (long) TOKENS * dim, 1}, {2L * HEADS * dim, 9, 1}}) {
            short[] a = new short[(int) (2 * TOKENS * HEADS * dim + 2 * HEADS * dim)];
            for (int i = 0; i < a.length; i++) {
                a[i] = (short) (i % 3 == 0 ? 0x7BFF : i % 3 == 1 ? 0xFBFF : 0x0001);   // +-65504, a subnormal
            }
            KvTensor t = new KvTensor(MemorySegment.ofArray(a), DType.F16, TOKENS, HEADS, dim, st[0], st[1], st[2]);
            for (DType store : DType.values()) {
                TensorCodec.check("k", t, store);
            }
            assertTrue(TensorCodec.allFiniteF16(t));
            for (short bad : new short[] {0x7C00, (short) 0xFC00, 0x7E00, (short) 0xFFFF, 0x7C01}) {
                for (int tok = 0; tok < TOKENS; tok++) {
                    for (int h = 0; h < HEADS; h++) {
                        for (int d = 0; d < dim; d++) {
                            int i = (int) t.elementOffset(tok, h, d);
                            short was = a[i];
                            a[i] = bad;
                            assertTrue(!TensorCodec.allFiniteF16(t), "0x" + Integer.toHexString(bad & 0xFFFF)
                                    + " at token " + tok + " head " + h + " dim " + d + " was not found");
                            KvArgumentException e = assertThrows(KvArgumentException.class,
                                    () -> TensorCodec.check("v", t, DType.F16));
                            assertTrue(e.getMessage().startsWith("v[token " + tok + ", head " + h + ", dim " + d
                                    + "]"), e.getMessage());
                            a[i] = was;
                        }
                    }
                }
            }
            // Elements outside the tensor (the gaps of a strided layout) are not its values: never checked.
            if (st[1] == 9) {
                a[7] = 0x7C00;   // between head 0 (elements 0..6) and head 1 (9..15) of token 0
                assertTrue(TensorCodec.allFiniteF16(t));
            }
        }
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
