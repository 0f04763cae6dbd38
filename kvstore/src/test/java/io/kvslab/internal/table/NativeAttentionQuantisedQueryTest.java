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
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The integer-query decode path (q8_0 / q4_0 keys, the query quantised to q8_0, integer dot products): against a
 * plain-Java reference written here from ggml's byte layout that quantises the query the same way (the integer
 * dot products are exact, so within float rounding, 1e-5); against the exact path within the bound the query's
 * rounding allows; batched = single bitwise; and the flag ignored where the path does not apply.
 */
class NativeAttentionQuantisedQueryTest {
    @AfterAll
    static void restoreInstructionSet() {
        NativeAttention.setInstructionSet(0);
    }

    static Stream<Arguments> cases() {
        int q8 = DType.Q8_0.code();
        int q4 = DType.Q4_0.code();
        int f16 = DType.F16.code();
        return Stream.of(
                // kvHeads, group, headDim, K, V, blockRows, lengths, threads
                Arguments.of(2, 4, 128, q8, q8, 32, new long[] {1000, 77}, 1),
                Arguments.of(3, 3, 64, q4, q4, 16, new long[] {0, 65, 3000}, 2),
                Arguments.of(2, 5, 128, q4, f16, 7, new long[] {1, 2049}, 1),
                Arguments.of(1, 8, 256, q8, q4, 100, new long[] {5000}, 2),
                Arguments.of(2, 1, 32, q8, q8, 32, new long[] {33, 64}, 1),
                Arguments.of(2, 2, 96, q4, q8, 32, new long[] {6000, 6000}, 3),
                // head dims below 32: one group of headDim values per row (stories260K: 8)
                Arguments.of(2, 4, 8, q8, q8, 16, new long[] {300, 41}, 1),
                Arguments.of(2, 2, 16, q4, q4, 32, new long[] {500, 300}, 2));
    }

    @ParameterizedTest(name = "{index}: kv={0} group={1} headDim={2} K={3} V={4} blockRows={5} threads={7}")
    @MethodSource("cases")
    void matchesIntegerReferenceAndStaysWithinTheQueryRoundingBound(int kvHeads, int group, int headDim, int k,
                                                                    int v, int blockRows, long[] lengths,
                                                                    int threads) {
        for (int isa : new int[] {1, 0}) {
            NativeAttention.setInstructionSet(isa);
            AttentionShape exact = new AttentionShape(kvHeads, group, headDim, k, v, blockRows);
            AttentionShape integer = exact.withQuantisedQuery(true);
            assertTrue(integer.quantisedScores());
            Random rnd = new Random(17L * headDim + 5L * group + k + 3L * isa);
            try (Arena arena = Arena.ofConfined()) {
                PagedKv kv = new PagedKv(arena, exact, lengths, rnd, 1, 2.0f);
                int qf = (int) exact.tokenFloats();
                float[] q = new float[qf];
                for (int i = 0; i < qf; i++) {
                    q[i] = PagedKv.unit(rnd) * (i % 37 == 0 ? 6 : 1); // a few outliers, as real queries have
                }
                float scale = (float) (1.0 / Math.sqrt(headDim));
                float[] lseInt = new float[exact.queryHeads()];
                float[] outInt = run(arena, integer, kv, q, scale, threads, lseInt);
                float[] lseExact = new float[exact.queryHeads()];
                float[] outExact = run(arena, exact, kv, q, scale, threads, lseExact);

                // 1. the independent reference with the same query quantisation
                double[] ref = new double[qf];
                double[] refLse = new double[exact.queryHeads()];
                double[] bound = new double[exact.queryHeads()];
                reference(kv, q, scale, ref, refLse, bound);
                double maxRef = 0;
                double maxErr = 0;
                for (int i = 0; i < qf; i++) {
                    maxRef = Math.max(maxRef, Math.abs(ref[i]));
                    maxErr = Math.max(maxErr, Math.abs(ref[i] - outInt[i]));
                }
                String what = integer + " lengths " + java.util.Arrays.toString(lengths) + " isa " + isa;
                assertTrue(maxErr <= 1e-5 * Math.max(1, maxRef), "max error " + maxErr + " vs reference, " + what);
                for (int qh = 0; qh < exact.queryHeads(); qh++) {
                    if (Double.isInfinite(refLse[qh])) {
                        assertEquals(Float.NEGATIVE_INFINITY, lseInt[qh], what);
                        assertEquals(Float.NEGATIVE_INFINITY, lseExact[qh], what);
                    } else {
                        assertEquals(refLse[qh], lseInt[qh], 1e-5 * Math.max(1, Math.abs(refLse[qh])), what);
                    }
                }

                // 2. against the exact path: a score moves by at most delta = sum_j (dq_j / 2) sum_i |k_ji|, so
                // lse by at most delta and every output by at most (e^(2 delta) - 1) max |v|
                double maxV = 0;
                for (float[] vs : kv.values) {
                    for (float x : vs) {
                        maxV = Math.max(maxV, Math.abs(x));
                    }
                }
                boolean differs = false;
                int d = headDim;
                for (int qh = 0; qh < exact.queryHeads(); qh++) {
                    if (Float.isInfinite(lseExact[qh])) {
                        continue;
                    }
                    double slack = 1e-5 * Math.max(1, Math.abs(lseExact[qh]));
                    assertTrue(Math.abs(lseInt[qh] - lseExact[qh]) <= bound[qh] + slack,
                            "lse moved " + Math.abs(lseInt[qh] - lseExact[qh]) + " > bound " + bound[qh] + ", " + what);
                    double outBound = Math.expm1(2 * bound[qh]) * maxV + 1e-5 * Math.max(1, maxV);
                    for (int c = 0; c < d; c++) {
                        double diff = Math.abs(outInt[qh * d + c] - outExact[qh * d + c]);
                        assertTrue(diff <= outBound, "out moved " + diff + " > bound " + outBound + ", " + what);
                        differs |= diff > 0;
                    }
                }
                assertTrue(differs, "the integer path was taken (its output differs from the exact one), " + what);
            }
        }
    }

    @Test
    void batchedCallsGiveTheSingleCallsResultBitwise() {
        AttentionShape exact = new AttentionShape(2, 4, 128, DType.Q4_0.code(), DType.Q8_0.code(), 32);
        // and the batch really took the integer path: the exact decode differs
        BatchedDecodeCheck.batchEqualsSinglesAndDiffersFrom(exact.withQuantisedQuery(true), exact, 5);
    }

    @Test
    void whereThePathDoesNotApplyTheFlagChangesNothing() {
        // keys that are not quantised: exact scores, bitwise those without the flag
        int[][] shapes = {{2, 4, 8, DType.F16.code()}, {2, 4, 128, DType.F16.code()}, {2, 2, 16, DType.BF16.code()},
                {1, 3, 64, DType.F32.code()}};
        for (int[] s : shapes) {
            AttentionShape exact = new AttentionShape(s[0], s[1], s[2], s[3], 32);
            AttentionShape flagged = exact.withQuantisedQuery(true);
            assertFalse(flagged.quantisedScores(), flagged.toString());
            Random rnd = new Random(s[2]);
            try (Arena arena = Arena.ofConfined()) {
                PagedKv kv = new PagedKv(arena, exact, new long[] {500, 300}, rnd, 0, 1.0f);
                float[] q = new float[(int) exact.tokenFloats()];
                for (int i = 0; i < q.length; i++) {
                    q[i] = PagedKv.unit(rnd);
                }
                float[] lse = new float[exact.queryHeads()];
                assertArrayEquals(run(arena, exact, kv, q, 0.3f, 1, lse), run(arena, flagged, kv, q, 0.3f, 1, lse));
            }
        }
    }

    private static float[] run(Arena arena, AttentionShape shape, PagedKv kv, float[] q, float scale, int threads,
                               float[] lse) {
        MemorySegment qs = arena.allocateFrom(JAVA_FLOAT, q);
        MemorySegment out = arena.allocate(JAVA_FLOAT, q.length);
        MemorySegment lseSeg = arena.allocate(JAVA_FLOAT, shape.queryHeads());
        NativeAttention.decode(shape, qs, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale, out,
                lseSeg, threads);
        MemorySegment.copy(lseSeg, JAVA_FLOAT, 0, lse, 0, lse.length);
        return out.toArray(JAVA_FLOAT);
    }

    /**
     * Decode with the query quantised as the integer path does (x = q * scale in f32; per 32 values d = amax / 127,
     * codes rint(x / d) via x * (1 / d)) and scores sum_j d_j dk_j I_j, I_j from the stored key bytes (ggml layout:
     * f16 scale, then 32 int8 codes, or 16 bytes of nibbles: value i low nibble of byte i, value i + 16 its high
     * nibble, minus 8). Values: the dequantised V rows. Also the bound per query head of how far its scores can
     * move from the exact ones: max over rows of sum_j (d_j / 2) sum_i |k_ji|.
     */
    static void reference(PagedKv kv, float[] q, float scale, double[] out, double[] lse, double[] bound) {
        AttentionShape shape = kv.shape;
        int d = shape.headDim();
        for (int h = 0; h < shape.kvHeads(); h++) {
            int n = (int) kv.lengths[h];
            for (int g = 0; g < shape.group(); g++) {
                int qh = h * shape.group() + g;
                double[] rowBounds = new double[n];
                double[] s = scores(kv, q, scale, qh, rowBounds);
                double max = Double.NEGATIVE_INFINITY;
                double worst = 0;
                for (int r = 0; r < n; r++) {
                    max = Math.max(max, s[r]);
                    worst = Math.max(worst, rowBounds[r]);
                }
                bound[qh] = worst * (1 + 1e-6);
                double sum = 0;
                for (int r = 0; r < n; r++) {
                    s[r] = Math.exp(s[r] - max);
                    sum += s[r];
                }
                for (int c = 0; c < d; c++) {
                    double o = 0;
                    for (int r = 0; r < n; r++) {
                        o += s[r] * kv.values[h][r * d + c];
                    }
                    out[qh * d + c] = n == 0 ? 0 : o / sum;
                }
                lse[qh] = n == 0 ? Double.NEGATIVE_INFINITY : max + Math.log(sum);
            }
        }
    }

    /**
     * The integer-query scores of query head {@code qh} against every row of its KV head: the query times the
     * scale quantised per group of {@code n = min(32, headDim)} values (d = amax / 127, codes rint(x / d) via
     * x * (1 / d)), a score sum_j d_j dk_j I_j with I_j from the stored key bytes (ggml layout: f16 scale, then n
     * int8 codes, or n/2 bytes of nibbles: value i low nibble of byte i, value i + n/2 its high nibble, minus 8).
     * {@code rowBound[r]} gets how far row r's score can be from the exact one: sum_j (d_j / 2) |dk_j| sum_i |k_ji|.
     */
    static double[] scores(PagedKv kv, float[] q, float scale, int qh, double[] rowBound) {
        AttentionShape shape = kv.shape;
        int d = shape.headDim();
        int gs = Math.min(32, d);
        int groups = d / gs;
        int h = qh / shape.group();
        boolean q8 = shape.keyType() == DType.Q8_0;
        long groupBytes = q8 ? gs + 2 : gs / 2 + 2;
        int n = (int) kv.lengths[h];
        long first = kv.offsets.getAtIndex(JAVA_LONG, h);
        int[] codes = new int[d];
        double[] dq = new double[groups];
        for (int j = 0; j < groups; j++) {
            float[] x = new float[gs];
            float amax = 0;
            for (int i = 0; i < gs; i++) {
                x[i] = q[qh * d + gs * j + i] * scale;
                amax = Math.max(amax, Math.abs(x[i]));
            }
            float step = amax / 127.0f;
            float inv = step == 0 ? 0 : 1.0f / step;
            for (int i = 0; i < gs; i++) {
                codes[gs * j + i] = (int) Math.rint(x[i] * inv);
            }
            dq[j] = step;
        }
        double[] s = new double[n];
        for (int r = 0; r < n; r++) {
            long block = kv.keyBlocks.getAtIndex(JAVA_LONG, first + r / shape.blockRows());
            MemorySegment row = MemorySegment.ofAddress(block).reinterpret(Long.MAX_VALUE)
                    .asSlice((r % shape.blockRows()) * shape.keyRowBytes(), shape.keyRowBytes());
            double score = 0;
            double bound = 0;
            for (int j = 0; j < groups; j++) {
                double dk = Float.float16ToFloat(row.get(JAVA_SHORT_UNALIGNED, j * groupBytes));
                long dot = 0;
                long abs = 0;
                for (int i = 0; i < gs; i++) {
                    int code;
                    if (q8) {
                        code = row.get(JAVA_BYTE, j * groupBytes + 2 + i);
                    } else {
                        int b = row.get(JAVA_BYTE, j * groupBytes + 2 + (i % (gs / 2))) & 0xFF;
                        code = (i < gs / 2 ? b & 0xF : b >> 4) - 8;
                    }
                    dot += (long) codes[gs * j + i] * code;
                    abs += Math.abs(code);
                }
                score += dq[j] * dk * dot;
                bound += dq[j] / 2 * Math.abs(dk) * abs;
            }
            s[r] = score;
            rowBound[r] = bound;
        }
        return s;
    }
}
