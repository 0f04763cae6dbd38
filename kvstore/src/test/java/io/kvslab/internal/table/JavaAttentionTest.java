package io.kvslab.internal.table;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The plain-Java fallback against the same double-precision reference the native kernel is tested with. */
class JavaAttentionTest {

    @Test
    void decodeMatchesReferenceForEveryDtypeAndRaggedHeads() {
        int seed = 0;
        for (int dtype = 0; dtype <= 4; dtype++) {
            decode(new AttentionShape(3, 2, 16, dtype, 8), new long[] {0, 1, 37}, 1.0f, new Random(seed++));
            decode(new AttentionShape(2, 4, 64, dtype, 32), new long[] {500, 33}, 30.0f, new Random(seed++));
            // odd head dim (q4_0 needs an even one: 6)
            decode(new AttentionShape(1, 1, dtype == 4 ? 6 : 7, dtype, 5), new long[] {11}, 1.0f, new Random(seed++));
        }
    }

    @Test
    void quantisedQueryDecodeMatchesTheIntegerReference() {
        // the fallback honours the integer-query choice as the kernel does (same query rounding, exact integer dots)
        int q8 = io.kvslab.DType.Q8_0.code();
        int q4 = io.kvslab.DType.Q4_0.code();
        AttentionShape[] shapes = {new AttentionShape(2, 3, 64, q8, q8, 16, true),
                new AttentionShape(2, 2, 128, q4, io.kvslab.DType.F16.code(), 32, true)};
        Random rnd = new Random(9);
        for (AttentionShape shape : shapes) {
            long[] lengths = {300, 0};
            try (Arena arena = Arena.ofConfined()) {
                PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 0, 2.0f);
                int qf = (int) shape.tokenFloats();
                float[] q = new float[qf];
                for (int i = 0; i < qf; i++) {
                    q[i] = PagedKv.unit(rnd);
                }
                float scale = 0.125f;
                MemorySegment out = arena.allocate(JAVA_FLOAT, qf);
                MemorySegment lse = arena.allocate(JAVA_FLOAT, shape.queryHeads());
                JavaAttention.decode(shape, arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks, kv.valueBlocks,
                        kv.offsets, kv.lengthSegment, scale, out, lse);
                double[] ref = new double[qf];
                double[] refLse = new double[shape.queryHeads()];
                NativeAttentionQuantisedQueryTest.reference(kv, q, scale, ref, refLse, new double[shape.queryHeads()]);
                for (int i = 0; i < qf; i++) {
                    assertEquals(ref[i], out.getAtIndex(JAVA_FLOAT, i), 1e-5 * Math.max(1, Math.abs(ref[i])), shape + " " + i);
                }
                for (int qh = 0; qh < shape.group(); qh++) { // head 0's query heads; head 1 is empty
                    assertEquals(refLse[qh], lse.getAtIndex(JAVA_FLOAT, qh), 1e-5 * Math.max(1, Math.abs(refLse[qh])));
                }
                // and the exact fallback differs: the choice was honoured
                MemorySegment exact = arena.allocate(JAVA_FLOAT, qf);
                JavaAttention.decode(shape.withQuantisedQuery(false), arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks,
                        kv.valueBlocks, kv.offsets, kv.lengthSegment, scale, exact, null);
                assertTrue(!java.util.Arrays.equals(exact.toArray(JAVA_FLOAT), out.toArray(JAVA_FLOAT)), shape.toString());
            }
        }
    }

    @Test
    void prefillMatchesReferenceRowByRow() {
        int seed = 100;
        for (int dtype = 0; dtype <= 4; dtype++) {
            prefill(new AttentionShape(2, 2, 16, dtype, 8), new long[] {20, 9}, 5, new Random(seed++));
            prefill(new AttentionShape(1, 3, 32, dtype, 4), new long[] {7}, 7, new Random(seed++));
        }
    }

    private static double tolerance(AttentionShape shape) {
        return shape.dtype() == 0 ? 1e-5 : 2e-3;
    }

    private static void decode(AttentionShape shape, long[] lengths, float keyScale, Random rnd) {
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 1, keyScale);
            int qf = (int) shape.tokenFloats();
            float[] q = new float[qf];
            for (int i = 0; i < qf; i++) {
                q[i] = PagedKv.unit(rnd);
            }
            float scale = (float) (1.0 / Math.sqrt(shape.headDim()));
            MemorySegment out = arena.allocate(JAVA_FLOAT, qf);
            MemorySegment lse = arena.allocate(JAVA_FLOAT, shape.queryHeads());
            JavaAttention.decode(shape, arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks, kv.valueBlocks, kv.offsets,
                    kv.lengthSegment, scale, out, lse);
            double[] ref = new double[qf];
            double[] refLse = new double[shape.queryHeads()];
            kv.reference(q, 0, scale, lengths, ref, refLse);
            for (int i = 0; i < qf; i++) {
                assertEquals(ref[i], out.getAtIndex(JAVA_FLOAT, i), tolerance(shape), shape + " out[" + i + "]");
            }
            for (int qh = 0; qh < shape.queryHeads(); qh++) {
                float got = lse.getAtIndex(JAVA_FLOAT, qh);
                if (Double.isInfinite(refLse[qh])) {
                    assertEquals(Float.NEGATIVE_INFINITY, got);
                } else {
                    assertEquals(refLse[qh], got, 1e-4 * Math.max(1, Math.abs(refLse[qh])), shape + " lse[" + qh + "]");
                }
            }
        }
    }

    private static void prefill(AttentionShape shape, long[] lengths, int n, Random rnd) {
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 0, 1.0f);
            int tokenFloats = (int) shape.tokenFloats();
            float[] q = new float[n * tokenFloats];
            for (int i = 0; i < q.length; i++) {
                q[i] = PagedKv.unit(rnd);
            }
            float scale = (float) (1.0 / Math.sqrt(shape.headDim()));
            MemorySegment out = arena.allocate(JAVA_FLOAT, q.length);
            JavaAttention.prefill(shape, n, arena.allocateFrom(JAVA_FLOAT, q), kv.keyBlocks, kv.valueBlocks,
                    kv.offsets, kv.lengthSegment, scale, out);
            for (int i = 0; i < n; i++) {
                long[] visible = new long[lengths.length];
                for (int h = 0; h < lengths.length; h++) {
                    visible[h] = lengths[h] - n + i + 1;
                    assertTrue(visible[h] >= 1);
                }
                double[] ref = new double[tokenFloats];
                kv.reference(q, i * tokenFloats, scale, visible, ref, new double[shape.queryHeads()]);
                for (int j = 0; j < tokenFloats; j++) {
                    assertEquals(ref[j], out.getAtIndex(JAVA_FLOAT, (long) i * tokenFloats + j), tolerance(shape),
                            shape + " token " + i + " element " + j);
                }
            }
        }
    }
}
