package io.kvslab.internal.table;

import io.kvslab.internal.ffm.KernelDowncalls;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Causal prefill against the double-precision reference: query token i of a head with length L sees exactly
 * rows 0 .. L - n + i. Covers chunks of one to many tokens, ragged lengths, key tiles crossing blocks, groups
 * larger than one work item, 1 and 2 threads.
 */
class NativeAttentionPrefillTest {

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        int[] queryCounts = {1, 5, 70};
        int[] blockRows = {32, 7, 100};
        int i = 0;
        for (int dtype = 0; dtype < 5; dtype++) {
            for (int group : new int[] {1, 2, 4}) {
                for (int headDim : new int[] {8, 64, 128}) {
                    int n = queryCounts[i % queryCounts.length];
                    long[] lengths = {n, n + 40, 300 + n}; // a head that is all chunk, one with a short prefix, ...
                    cases.add(Arguments.of(dtype, group, headDim, blockRows[i % blockRows.length], n, lengths,
                            1 + (i % 2)));
                    i++;
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{index}: dtype={0} group={1} headDim={2} blockRows={3} n={4} threads={6}")
    @MethodSource("cases")
    void matchesCausalReference(int dtype, int group, int headDim, int blockRows, int n, long[] lengths, int threads) {
        AttentionShape shape = new AttentionShape(lengths.length, group, headDim, dtype, blockRows);
        check(shape, n, lengths, threads, new Random(17L * dtype + 5L * group + headDim + n));
    }

    @Test
    void keyAndValueTilesConvertedByTheirOwnTypes() {
        int[][] pairs = {{3, 4}, {1, 3}, {0, 2}, {4, 0}};
        for (int[] p : pairs) {
            for (int headDim : new int[] {8, 64}) {
                check(new AttentionShape(2, 2, headDim, p[0], p[1], 16), 40, new long[] {300, 77}, 2,
                        new Random(headDim + 10L * p[0] + p[1]));
            }
        }
    }

    @Test
    void longChunkWithSeveralWorkItemsPerHead() {
        // 300 tokens x group 4 = 1200 query rows: several items per head, later items seeing more key tiles
        check(new AttentionShape(2, 4, 64, 1, 32), 300, new long[] {300, 1000}, 2, new Random(1));
    }

    @Test
    void groupLargerThanAWorkItem() {
        check(new AttentionShape(1, 300, 16, 0, 32), 3, new long[] {50}, 2, new Random(2));
    }

    @Test
    void lastQueryOfPrefillEqualsDecodeOverTheWholeHead() {
        AttentionShape shape = new AttentionShape(2, 2, 64, 0, 32);
        long[] lengths = {90, 200};
        int n = 9;
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 0, 1.0f);
            int tf = (int) shape.tokenFloats();
            float[] q = randomQueries(n * tf, rnd);
            MemorySegment qs = arena.allocateFrom(JAVA_FLOAT, q);
            MemorySegment out = arena.allocate(JAVA_FLOAT, (long) n * tf);
            float scale = 0.125f;
            NativeAttention.prefill(shape, n, qs, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale,
                    out, 1);
            MemorySegment lastQ = qs.asSlice((long) (n - 1) * tf * Float.BYTES, (long) tf * Float.BYTES);
            MemorySegment decoded = arena.allocate(JAVA_FLOAT, tf);
            NativeAttention.decode(shape, lastQ, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale,
                    decoded, null, 1);
            for (int i = 0; i < tf; i++) {
                assertEquals(decoded.getAtIndex(JAVA_FLOAT, i), out.getAtIndex(JAVA_FLOAT, (long) (n - 1) * tf + i),
                        1e-5, "element " + i);
            }
        }
    }

    @Test
    void openBlasThreadCountIsRestoredAfterPrefill() throws Throwable {
        // the prefill runs OpenBLAS single-threaded under its own workers; other BLAS users must get their
        // thread count back (the runner's matmuls share this OpenBLAS)
        int before = KernelDowncalls.openBlasThreads();
        try {
            KernelDowncalls.setOpenBlasThreads(2);
            check(new AttentionShape(2, 4, 64, 1, 32), 40, new long[] {300, 1000}, 2, new Random(4));
            assertEquals(2, KernelDowncalls.openBlasThreads(), "OpenBLAS thread count after a prefill");
        } finally {
            KernelDowncalls.setOpenBlasThreads(before);
        }
    }

    static float[] randomQueries(int count, Random rnd) {
        float[] q = new float[count];
        for (int i = 0; i < count; i++) {
            q[i] = PagedKv.unit(rnd);
        }
        return q;
    }

    static void check(AttentionShape shape, int n, long[] lengths, int threads, Random rnd) {
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, 1, 1.0f);
            int tf = (int) shape.tokenFloats();
            float[] q = randomQueries(n * tf, rnd);
            float scale = (float) (1.0 / Math.sqrt(shape.headDim()));
            MemorySegment qs = arena.allocateFrom(JAVA_FLOAT, q);
            MemorySegment out = arena.allocate(JAVA_FLOAT, (long) n * tf);
            out.fill((byte) 0x7F);
            NativeAttention.prefill(shape, n, qs, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale,
                    out, threads);
            double tol = shape.keyDtype() == 0 && shape.valueDtype() == 0 ? 1e-5 : 2e-3;
            double[] ref = new double[tf];
            double[] lse = new double[shape.queryHeads()];
            long[] visible = new long[lengths.length];
            double maxErr = 0;
            for (int i = 0; i < n; i++) {
                for (int h = 0; h < lengths.length; h++) {
                    visible[h] = lengths[h] - n + i + 1;
                }
                kv.reference(q, i * tf, scale, visible, ref, lse);
                for (int e = 0; e < tf; e++) {
                    maxErr = Math.max(maxErr, Math.abs(ref[e] - out.getAtIndex(JAVA_FLOAT, (long) i * tf + e)));
                }
            }
            assertTrue(maxErr <= tol, "max abs error " + maxErr + " > " + tol + " for " + shape + " n " + n
                    + " lengths " + Arrays.toString(lengths) + " threads " + threads);
        }
    }
}
