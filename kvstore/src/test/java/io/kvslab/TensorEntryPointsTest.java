package io.kvslab;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The tensor entry points (caller tensors in any layout and element type, native or heap) against the float[]
 * entry points: the store must hold bit-identical rows and attention must give bit-identical outputs.
 */
class TensorEntryPointsTest {
    private static final int LAYERS = 2, QH = 8, KVH = 4, DIM = 16, TOKENS = 45;

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextFloat() * 4 - 2;
        }
        return a;
    }

    /** Copies a [tokens][heads][dim] array into a head-major [heads][tokens][dim] native segment of {@code type}. */
    private static MemorySegment headMajor(Arena arena, float[] a, DType type) {
        MemorySegment seg = arena.allocate((long) a.length * type.bytes(), 8);
        for (int t = 0; t < TOKENS; t++) {
            for (int h = 0; h < KVH; h++) {
                for (int d = 0; d < DIM; d++) {
                    float x = a[(t * KVH + h) * DIM + d];
                    long i = ((long) h * TOKENS + t) * DIM + d;
                    switch (type) {
                        case F32 -> seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, x);
                        case F16 -> seg.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(x));
                        case BF16 -> seg.setAtIndex(ValueLayout.JAVA_SHORT, i,
                                (short) ((Float.floatToRawIntBits(x) + 0x7FFF + ((Float.floatToRawIntBits(x) >>> 16) & 1)) >>> 16));
                        default -> throw new IllegalArgumentException("tensors are F32, F16 or BF16");
                    }
                }
            }
        }
        return seg;
    }

    private static float widen(DType type, float x) {
        return switch (type) {
            case F32 -> x;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> {
                int b = Float.floatToRawIntBits(x);
                yield Float.intBitsToFloat(((b + 0x7FFF + ((b >>> 16) & 1)) >>> 16) << 16);
            }
            default -> throw new IllegalArgumentException("tensors are F32, F16 or BF16");
        };
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void tensorsInAnyLayoutStoreTheSameRowsAndAttendTheSame(DType store) {
        Random rnd = new Random(store.ordinal() + 1);
        KvLayout layout = new KvLayout(LAYERS, QH, KVH, DIM, store, 8);
        float[][] k = new float[LAYERS][], v = new float[LAYERS][];
        for (int l = 0; l < LAYERS; l++) {
            k[l] = random(rnd, TOKENS * KVH * DIM);
            v[l] = random(rnd, TOKENS * KVH * DIM);
        }
        long[] positions = new long[TOKENS];
        for (int t = 0; t < TOKENS; t++) {
            positions[t] = 3L * t;
        }
        for (DType input : new DType[] {DType.F32, DType.F16, DType.BF16}) {   // a caller's tensor is never quantised
            try (KvStore s = KvStore.open(layout); Arena arena = Arena.ofConfined();
                 Sequence viaArrays = s.newSequence(); Sequence viaTensors = s.newSequence();
                 Attention att = Attention.create(2)) {
                for (int l = 0; l < LAYERS; l++) {
                    // what the tensor path must equal: the arrays after rounding to the tensor's own type
                    float[] kr = k[l].clone(), vr = v[l].clone();
                    for (int i = 0; i < kr.length; i++) {
                        kr[i] = widen(input, kr[i]);
                        vr[i] = widen(input, vr[i]);
                    }
                    viaArrays.appendChunk(l, kr, vr, positions);
                    // layer 0: HF layout, chunk; layer 1: head-major strided tensors, one token at a time
                    MemorySegment ks = headMajor(arena, k[l], input), vs = headMajor(arena, v[l], input);
                    if (l == 0 && input == DType.F32) {
                        viaTensors.appendChunk(l, KvTensor.of(k[l], TOKENS, KVH, DIM), KvTensor.of(v[l], TOKENS, KVH, DIM),
                                positions);
                    } else {
                        for (int t = 0; t < TOKENS; t++) {
                            KvTensor kt = new KvTensor(ks.asSlice((long) t * DIM * input.bytes()), input, 1, KVH, DIM,
                                    0, (long) TOKENS * DIM, 1);
                            KvTensor vt = new KvTensor(vs.asSlice((long) t * DIM * input.bytes()), input, 1, KVH, DIM,
                                    0, (long) TOKENS * DIM, 1);
                            viaTensors.append(l, kt, vt, positions[t]);
                        }
                    }
                }
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < KVH; h++) {
                        float[] a = new float[TOKENS * DIM], b = new float[TOKENS * DIM];
                        viaArrays.readKeys(l, h, a);
                        viaTensors.readKeys(l, h, b);
                        assertArrayEquals(a, b, "keys " + input + "->" + store + " layer " + l + " head " + h);
                        viaArrays.readValues(l, h, a);
                        viaTensors.readValues(l, h, b);
                        assertArrayEquals(a, b, "values " + input + "->" + store);
                        assertArrayEquals(viaArrays.positions(l, h), viaTensors.positions(l, h));
                    }
                }
                float[] q = random(rnd, QH * DIM);
                float[] outArrays = new float[QH * DIM];
                att.decode(viaArrays, 1, q, outArrays);
                MemorySegment qNative = arena.allocateFrom(ValueLayout.JAVA_FLOAT, q);
                MemorySegment outNative = arena.allocate(ValueLayout.JAVA_FLOAT, QH * DIM);
                att.decode(viaTensors, 1, qNative, outNative);
                assertArrayEquals(outArrays, outNative.toArray(ValueLayout.JAVA_FLOAT), "native decode " + input);
                float[] outHeap = new float[QH * DIM];
                att.decode(viaTensors, 1, MemorySegment.ofArray(q.clone()), MemorySegment.ofArray(outHeap));
                assertArrayEquals(outArrays, outHeap, "heap-segment decode " + input);
            }
        }
    }

    @Test
    void prefillWithSegmentsEqualsArrays() {
        Random rnd = new Random(9);
        KvLayout layout = new KvLayout(1, QH, KVH, DIM, DType.F16, 8);
        try (KvStore s = KvStore.open(layout); Arena arena = Arena.ofConfined(); Sequence seq = s.newSequence();
             Attention att = Attention.create(1)) {
            long[] positions = new long[TOKENS];
            for (int t = 0; t < TOKENS; t++) {
                positions[t] = t;
            }
            seq.appendChunk(0, KvTensor.of(random(rnd, TOKENS * KVH * DIM), TOKENS, KVH, DIM),
                    KvTensor.of(random(rnd, TOKENS * KVH * DIM), TOKENS, KVH, DIM), positions);
            int n = 5;
            float[] q = random(rnd, n * QH * DIM);
            float[] expected = new float[q.length];
            att.prefill(seq, 0, q, n, expected);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, q.length);
            att.prefill(seq, 0, arena.allocateFrom(ValueLayout.JAVA_FLOAT, q), n, out);
            assertArrayEquals(expected, out.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    @Test
    void badTensorsAreTypedErrorsAndChangeNothing() {
        KvLayout layout = new KvLayout(1, QH, KVH, DIM, DType.F16, 8);
        try (KvStore s = KvStore.open(layout); Sequence seq = s.newSequence(); Attention att = Attention.create(1)) {
            float[] ok = new float[KVH * DIM];
            seq.append(0, KvTensor.of(ok, 1, KVH, DIM), KvTensor.of(ok, 1, KVH, DIM), 0);
            long live = s.stats().liveBytes();
            float[] big = new float[2 * KVH * DIM];
            big[KVH * DIM + 3] = 1e6f;   // second token: beyond the f16 range
            long[] pos = {1, 2};
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> seq.appendChunk(0, KvTensor.of(big, 2, KVH, DIM), KvTensor.of(new float[2 * KVH * DIM], 2, KVH, DIM), pos));
            assertEquals(true, e.getMessage().contains("token 1"), e.getMessage());
            assertThrows(KvArgumentException.class,
                    () -> seq.append(0, KvTensor.of(ok, 1, KVH, DIM), KvTensor.of(new float[KVH * 8], 1, KVH, 8), 1));
            assertThrows(KvArgumentException.class,
                    () -> seq.appendChunk(0, KvTensor.of(big, 2, KVH, DIM), KvTensor.of(big, 2, KVH, DIM), new long[] {5}));
            assertEquals(1, seq.length(0, 0));
            assertEquals(live, s.stats().liveBytes());
            float[] q = new float[QH * DIM];
            assertThrows(KvArgumentException.class,
                    () -> att.decode(seq, 0, MemorySegment.ofArray(q), MemorySegment.ofArray(new float[QH * DIM - 1])));
            MemorySegment both = MemorySegment.ofArray(new float[QH * DIM]);
            assertThrows(KvArgumentException.class, () -> att.decode(seq, 0, both, both));
            q[3] = Float.NaN;
            assertThrows(KvArgumentException.class,
                    () -> att.decode(seq, 0, MemorySegment.ofArray(q), MemorySegment.ofArray(new float[QH * DIM])));
        }
    }
}
