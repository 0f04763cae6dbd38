package io.kvslab.internal.table;

import io.kvslab.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.stream.Stream;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The integer value path (q8_0 / q4_0 V rows, {@code KVS_VALUE_INT8}): the kernel (both instruction sets) and the
 * Java fallback against a plain-Java reference written here from ggml's byte layout: exact softmax over the rows
 * (the exact scores, or the integer-query ones of {@link NativeAttentionQuantisedQueryTest#scores}), output the
 * probability-weighted sum of the dequantised V rows, and a bound per output derived from the weights' rounding:
 * in a tile T (rows of one block, at most 64 from its start) and group j of V values the weights {@code p_r d_jr}
 * are rounded to a step {@code sw = pmax_T dmax_jT / 127}, so each is off by at most {@code sw / 2} and output
 * column c moves by at most {@code sum_T (sw_jT / 2) sum_(r in T) |k_rc| / L} (k the integer V codes, p and L in
 * the frame of the head's largest score). Also: batched = single bitwise, and the flag changes nothing for V
 * types it does not apply to.
 */
class NativeAttentionIntegerValuesTest {
    @AfterAll
    static void restoreInstructionSet() {
        NativeAttention.setInstructionSet(0);
    }

    static Stream<Arguments> cases() {
        int q8 = DType.Q8_0.code();
        int q4 = DType.Q4_0.code();
        int f16 = DType.F16.code();
        int f32 = DType.F32.code();
        return Stream.of(
                // kvHeads, group, headDim, K, V, blockRows, lengths, threads, integer-query scores
                Arguments.of(2, 4, 128, f16, q8, 32, new long[] {1000, 77}, 1, false),
                Arguments.of(3, 3, 64, q4, q4, 16, new long[] {0, 65, 3000}, 2, true),
                Arguments.of(2, 5, 128, q8, q4, 7, new long[] {1, 2049}, 1, false),
                Arguments.of(1, 8, 256, q8, q8, 100, new long[] {5000}, 2, true),   // 64-row tiles within a block
                Arguments.of(2, 1, 32, f32, q8, 32, new long[] {33, 64}, 1, false),
                Arguments.of(2, 2, 96, q4, q8, 32, new long[] {6000, 6000}, 3, true),
                Arguments.of(1, 70, 32, q8, q4, 32, new long[] {300}, 1, false),    // more heads than one pass holds
                Arguments.of(2, 4, 8, q8, q8, 16, new long[] {300, 41}, 1, true),   // stories260K: one group of 8
                Arguments.of(2, 2, 16, q4, q4, 32, new long[] {500, 300}, 2, false));
    }

    @ParameterizedTest(name = "{index}: kv={0} group={1} headDim={2} K={3} V={4} blockRows={5} threads={7} iq={8}")
    @MethodSource("cases")
    void kernelAndFallbackStayWithinTheWeightRoundingBound(int kvHeads, int group, int headDim, int k, int v,
                                                            int blockRows, long[] lengths, int threads,
                                                            boolean integerQuery) {
        AttentionShape plain = new AttentionShape(kvHeads, group, headDim, k, v, blockRows, integerQuery);
        AttentionShape shape = plain.withIntegerValues(true);
        assertTrue(shape.integerValueSums());
        Random rnd = new Random(31L * headDim + 7L * group + v);
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 1, 2.0f);
            int qf = (int) shape.tokenFloats();
            float[] q = new float[qf];
            for (int i = 0; i < qf; i++) {
                q[i] = PagedKv.unit(rnd) * (i % 37 == 0 ? 6 : 1);
            }
            float scale = (float) (1.0 / Math.sqrt(headDim));
            double[] ref = new double[qf];
            double[] bound = new double[qf];
            reference(kv, q, scale, integerQuery, ref, bound);
            double maxRef = 0;
            for (double x : ref) {
                maxRef = Math.max(maxRef, Math.abs(x));
            }
            for (int isa : new int[] {1, 0, -1}) { // AVX2, the best the CPU has, the Java fallback
                float[] out;
                if (isa >= 0) {
                    NativeAttention.setInstructionSet(isa);
                    out = run(arena, shape, kv, q, scale, threads);
                } else {
                    MemorySegment o = arena.allocate(JAVA_FLOAT, qf);
                    JavaAttention.decode(shape, arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks, kv.valueBlocks,
                            kv.offsets, kv.lengthSegment, scale, o, null);
                    out = o.toArray(JAVA_FLOAT);
                }
                String what = shape + " lengths " + java.util.Arrays.toString(lengths) + " isa " + isa;
                double slack = 1e-5 * Math.max(1, maxRef);
                double used = 0;
                for (int i = 0; i < qf; i++) {
                    double err = Math.abs(out[i] - ref[i]);
                    assertTrue(err <= bound[i] * (1 + 1e-3) + slack,
                            "out[" + i + "] off by " + err + " > bound " + bound[i] + ", " + what);
                    used = Math.max(used, err / (bound[i] + slack));
                }
                // the path was taken: the output differs from the f32 value sums of the same scores
                float[] f32Values = isa >= 0 ? run(arena, plain, kv, q, scale, threads) : null;
                if (f32Values != null) {
                    assertFalse(java.util.Arrays.equals(f32Values, out), "integer values taken, " + what);
                }
                assertTrue(used > 0.01, "the bound is not vacuous here (largest error / bound " + used + "), " + what);
            }
        }
    }

    @Test
    void batchedCallsGiveTheSingleCallsResultBitwise() {
        AttentionShape shape = new AttentionShape(2, 4, 128, DType.Q8_0.code(), DType.Q4_0.code(), 32, true)
                .withIntegerValues(true);
        // and the batch really took the integer value path: without it the output differs
        BatchedDecodeCheck.batchEqualsSinglesAndDiffersFrom(shape, shape.withIntegerValues(false), 9);
    }

    @Test
    void otherValueTypesAreUnchanged() {
        int[] types = {DType.F32.code(), DType.F16.code(), DType.BF16.code()};
        for (int v : types) {
            AttentionShape plain = new AttentionShape(2, 4, 64, DType.Q8_0.code(), v, 32);
            AttentionShape flagged = plain.withIntegerValues(true);
            assertFalse(flagged.integerValueSums(), flagged.toString());
            Random rnd = new Random(v);
            try (Arena arena = Arena.ofConfined()) {
                PagedKv kv = new PagedKv(arena, plain, new long[] {500, 300}, rnd, 0, 1.0f);
                float[] q = new float[(int) plain.tokenFloats()];
                for (int i = 0; i < q.length; i++) {
                    q[i] = PagedKv.unit(rnd);
                }
                assertArrayEquals(run(arena, plain, kv, q, 0.3f, 1), run(arena, flagged, kv, q, 0.3f, 1));
            }
        }
    }

    private static float[] run(Arena arena, AttentionShape shape, PagedKv kv, float[] q, float scale, int threads) {
        MemorySegment out = arena.allocate(JAVA_FLOAT, q.length);
        NativeAttention.decode(shape, arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks, kv.valueBlocks, kv.offsets,
                kv.lengthSegment, scale, out, null, threads);
        return out.toArray(JAVA_FLOAT);
    }

    /** Reference outputs and their bounds, [query head][dim] (see the class comment). */
    private static void reference(PagedKv kv, float[] q, float scale, boolean integerQuery, double[] out,
                                  double[] bound) {
        AttentionShape shape = kv.shape;
        int d = shape.headDim();
        int gs = Math.min(32, d);
        int groups = d / gs;
        boolean q8 = shape.valueType() == DType.Q8_0;
        long groupBytes = q8 ? gs + 2 : gs / 2 + 2;
        int br = shape.blockRows();
        for (int h = 0; h < shape.kvHeads(); h++) {
            int n = (int) kv.lengths[h];
            long first = kv.offsets.getAtIndex(JAVA_LONG, h);
            // the V rows' scales and integer codes, from the bytes
            double[][] dv = new double[n][groups];
            int[][] codes = new int[n][d];
            for (int r = 0; r < n; r++) {
                long block = kv.valueBlocks.getAtIndex(JAVA_LONG, first + r / br);
                MemorySegment row = MemorySegment.ofAddress(block).reinterpret(Long.MAX_VALUE)
                        .asSlice((r % br) * shape.valueRowBytes(), shape.valueRowBytes());
                for (int j = 0; j < groups; j++) {
                    dv[r][j] = Float.float16ToFloat(row.get(JAVA_SHORT_UNALIGNED, j * groupBytes));
                    for (int i = 0; i < gs; i++) {
                        int c;
                        if (q8) {
                            c = row.get(JAVA_BYTE, j * groupBytes + 2 + i);
                        } else {
                            int b = row.get(JAVA_BYTE, j * groupBytes + 2 + (i % (gs / 2))) & 0xFF;
                            c = (i < gs / 2 ? b & 0xF : b >> 4) - 8;
                        }
                        codes[r][gs * j + i] = c;
                    }
                }
            }
            for (int g = 0; g < shape.group(); g++) {
                int qh = h * shape.group() + g;
                double[] s;
                if (integerQuery) {
                    s = NativeAttentionQuantisedQueryTest.scores(kv, q, scale, qh, new double[n]);
                } else {
                    s = new double[n];
                    for (int r = 0; r < n; r++) {
                        double dot = 0;
                        for (int c = 0; c < d; c++) {
                            dot += (double) (q[qh * d + c] * scale) * kv.keys[h][r * d + c];
                        }
                        s[r] = dot;
                    }
                }
                double max = Double.NEGATIVE_INFINITY;
                for (double x : s) {
                    max = Math.max(max, x);
                }
                double sum = 0;
                double[] p = new double[n];
                for (int r = 0; r < n; r++) {
                    p[r] = Math.exp(s[r] - max);
                    sum += p[r];
                }
                for (int c = 0; c < d; c++) {
                    double o = 0;
                    for (int r = 0; r < n; r++) {
                        o += p[r] * kv.values[h][r * d + c];
                    }
                    out[qh * d + c] = n == 0 ? 0 : o / sum;
                }
                // tiles: within a block, 64 rows from its start
                for (int t0 = 0; t0 < n; ) {
                    int t1 = Math.min(Math.min(n, (t0 / br + 1) * br), t0 + 64);
                    double pmax = 0;
                    for (int r = t0; r < t1; r++) {
                        pmax = Math.max(pmax, p[r]);
                    }
                    for (int j = 0; j < groups; j++) {
                        double dmax = 0;
                        for (int r = t0; r < t1; r++) {
                            dmax = Math.max(dmax, Math.abs(dv[r][j]));
                        }
                        double halfStep = pmax * dmax / 127 / 2;
                        for (int i = 0; i < gs; i++) {
                            long abs = 0;
                            for (int r = t0; r < t1; r++) {
                                abs += Math.abs(codes[r][gs * j + i]);
                            }
                            bound[qh * d + gs * j + i] += halfStep * abs / sum;
                        }
                    }
                    t0 = t1;
                }
            }
        }
    }
}
