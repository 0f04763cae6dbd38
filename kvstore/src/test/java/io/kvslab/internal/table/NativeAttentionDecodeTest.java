package io.kvslab.internal.table;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Decode attention against a double-precision reference over the same stored (dequantized) values: dtypes,
 * GQA groups, head dims, ragged lengths crossing block boundaries (with an empty head), odd and large block
 * sizes, 1 and 2 threads, AVX2 and the CPU's best instruction set.
 */
class NativeAttentionDecodeTest {
    private static final String[] DTYPES = {"f32", "f16", "bf16"};

    @AfterAll
    static void restoreInstructionSet() {
        NativeAttention.setInstructionSet(0);
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        long[][] lengthSets = {
                {0, 1, 33, 5000},          // an empty head, one row, just past a block, many blocks
                {31, 32, 64, 2000},        // just below / at block boundaries
                {65, 1000, 4999, 7},
        };
        int[] blockRows = {32, 16, 7, 100}; // 100 > the kernel's 64-row tile: tiles inside a block
        int i = 0;
        for (int dtype = 0; dtype < 5; dtype++) {
            for (int group : new int[] {1, 2, 4}) {
                for (int headDim : new int[] {8, 64, 128}) {
                    for (int isa : new int[] {1, 0}) {
                        int threads = 1 + (i % 2);
                        cases.add(Arguments.of(dtype, group, headDim, blockRows[i % blockRows.length],
                                lengthSets[i % lengthSets.length], threads, isa));
                        i++;
                    }
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{index}: dtype={0} group={1} headDim={2} blockRows={3} threads={5} isa={6}")
    @MethodSource("cases")
    void matchesReference(int dtype, int group, int headDim, int blockRows, long[] lengths, int threads, int isa) {
        NativeAttention.setInstructionSet(isa);
        AttentionShape shape = new AttentionShape(lengths.length, group, headDim, dtype, blockRows);
        check(shape, lengths, threads, 1.0f, 1, new Random(31L * dtype + 7L * group + headDim + blockRows));
    }

    @Test
    void headsSplitBetweenThreadsAreMergedExactly() {
        // enough bytes that two threads are used; the cut falls inside heads, whose partial results are merged
        for (int isa : new int[] {1, 0}) {
            NativeAttention.setInstructionSet(isa);
            check(new AttentionShape(3, 4, 8, 1, 32), new long[] {40000, 3, 70000}, 2, 1.0f, 0, new Random(1));
            check(new AttentionShape(2, 2, 64, 0, 32), new long[] {9000, 500}, 2, 1.0f, 1, new Random(2));
            check(new AttentionShape(5, 1, 128, 2, 16), new long[] {100, 0, 3000, 2500, 77}, 2, 1.0f, 0,
                    new Random(3));
            check(new AttentionShape(2, 4, 128, 0, 32), new long[] {6000, 6000}, 3, 1.0f, 0, new Random(4));
        }
        assertTrue(NativeAttention.poolThreads() >= 1, "two-thread calls started a pool worker");
    }

    /**
     * The kernel visits tiles across heads in the order their K rows lie in memory (so blocks placed block after
     * block, as token-by-token appends place them, are read as they lie), but each head's own tiles must still be
     * attended in row order and cut into the same chunks: the same rows at other addresses give the same bits.
     * Placements: the test cache's shuffled blocks, block after block (for each block index, every head's K and V
     * block), head after head (each head's K blocks, then its V blocks), and head after head in reverse order; with
     * an empty head, a head's queries filling 4 KiB, tiles inside 100-row blocks, and the integer paths' per-head
     * quantised queries and int8 value weights.
     */
    @Test
    void resultDoesNotDependOnWhereBlocksLie() {
        for (int isa : new int[] {1, 0}) {
            NativeAttention.setInstructionSet(isa);
            for (int threads : new int[] {1, 2}) {
                AttentionShape f16 = new AttentionShape(5, 2, 64, 1, 16);
                samePlacementBits(f16, f16, new long[] {5000, 37, 0, 4096, 3000}, threads, 11);   // an empty head
                AttentionShape f32 = new AttentionShape(3, 8, 128, 0, 32);   // a head's queries fill 4 KiB
                samePlacementBits(f32, f32, new long[] {3000, 3000, 2900}, threads, 12);
                AttentionShape q8 = new AttentionShape(2, 4, 64, 3, 100);   // 100-row blocks: tiles inside a block
                samePlacementBits(q8, q8, new long[] {1000, 6000}, threads, 13);
                // the per-head quantised queries and int8 value weights of the integer paths
                samePlacementBits(q8, q8.withQuantisedQuery(true).withIntegerValues(true), new long[] {4000, 2500},
                        threads, 14);
            }
        }
    }

    /** Rows stored as {@code stored} lays them out, decoded with {@code decoded} (the same rows, maybe other paths). */
    private static void samePlacementBits(AttentionShape stored, AttentionShape decoded, long[] lengths, int threads,
                                          long seed) {
        AttentionShape shape = decoded;
        try (Arena arena = Arena.ofConfined()) {
            Random rnd = new Random(seed);
            PagedKv kv = new PagedKv(arena, stored, lengths, rnd, 0, 1.0f);
            int heads = shape.kvHeads();
            int br = shape.blockRows();
            long[] off = new long[heads + 1];
            int maxBlocks = 0;
            for (int h = 0; h < heads; h++) {
                off[h + 1] = kv.offsets.getAtIndex(JAVA_LONG, h + 1);
                maxBlocks = (int) Math.max(maxBlocks, off[h + 1] - off[h]);
            }
            List<long[]> blockMajor = new ArrayList<>();   // (head, block) pairs in placement order
            for (int b = 0; b < maxBlocks; b++) {
                for (int h = 0; h < heads; h++) {
                    if (b < off[h + 1] - off[h]) {
                        blockMajor.add(new long[] {h, b});
                    }
                }
            }
            List<long[]> headMajor = new ArrayList<>();
            for (int h = 0; h < heads; h++) {
                for (int b = 0; b < off[h + 1] - off[h]; b++) {
                    headMajor.add(new long[] {h, b});
                }
            }
            List<long[]> reversed = new ArrayList<>(headMajor);
            java.util.Collections.reverse(reversed);
            float[] q = new float[(int) shape.tokenFloats()];
            for (int i = 0; i < q.length; i++) {
                q[i] = PagedKv.unit(rnd);
            }
            float[] shuffled = decodeOnce(arena, shape, kv, kv.keyBlocks, kv.valueBlocks, q, threads);
            String what = shape + " lengths " + java.util.Arrays.toString(lengths) + " threads " + threads;
            for (List<long[]> placement : List.of(blockMajor, headMajor, reversed)) {
                MemorySegment[] moved = relocate(arena, shape, kv, off, placement, br);
                float[] got = decodeOnce(arena, shape, kv, moved[0], moved[1], q, threads);
                assertArrayEquals(shuffled, got, "decode of the same rows in other blocks, " + what);
            }
        }
    }

    /** Copies every block of {@code kv} to new memory in {@code placement}'s order ({K, V} per pair, K then V). */
    private static MemorySegment[] relocate(Arena arena, AttentionShape shape, PagedKv kv, long[] off,
                                            List<long[]> placement, int br) {
        long kBytes = shape.keyRowBytes() * br;
        long vBytes = shape.valueRowBytes() * br;
        long kAligned = (kBytes + 63) / 64 * 64;
        long stride = kAligned + (vBytes + 63) / 64 * 64;
        MemorySegment all = arena.allocate(stride * placement.size(), 64);
        int blocks = (int) off[off.length - 1];
        MemorySegment keyBlocks = arena.allocate(Math.max(8, 8L * blocks), 8);
        MemorySegment valueBlocks = arena.allocate(Math.max(8, 8L * blocks), 8);
        long at = 0;
        for (long[] hb : placement) {
            int idx = (int) (off[(int) hb[0]] + hb[1]);
            MemorySegment k = MemorySegment.ofAddress(kv.keyBlocks.getAtIndex(JAVA_LONG, idx)).reinterpret(kBytes);
            MemorySegment v = MemorySegment.ofAddress(kv.valueBlocks.getAtIndex(JAVA_LONG, idx)).reinterpret(vBytes);
            MemorySegment.copy(k, 0, all, at, kBytes);
            MemorySegment.copy(v, 0, all, at + kAligned, vBytes);
            keyBlocks.setAtIndex(JAVA_LONG, idx, all.address() + at);
            valueBlocks.setAtIndex(JAVA_LONG, idx, all.address() + at + kAligned);
            at += stride;
        }
        return new MemorySegment[] {keyBlocks, valueBlocks};
    }

    private static float[] decodeOnce(Arena arena, AttentionShape shape, PagedKv kv, MemorySegment keyBlocks,
                                      MemorySegment valueBlocks, float[] q, int threads) {
        MemorySegment qs = arena.allocateFrom(JAVA_FLOAT, q);
        MemorySegment out = arena.allocate(JAVA_FLOAT, q.length + shape.queryHeads());
        NativeAttention.decode(shape, qs, keyBlocks, valueBlocks, kv.offsets, kv.lengthSegment,
                (float) (1.0 / Math.sqrt(shape.headDim())), out.asSlice(0, 4L * q.length),
                out.asSlice(4L * q.length), threads);
        return out.toArray(JAVA_FLOAT);
    }

    @Test
    void largeScoresStayFinite() {
        // keys scaled by 30: scores of several hundred, far beyond exp's range without max subtraction
        check(new AttentionShape(2, 4, 64, 0, 32), new long[] {3000, 100}, 2, 30.0f, 0, new Random(5));
        check(new AttentionShape(2, 4, 64, 1, 32), new long[] {3000, 100}, 1, 30.0f, 0, new Random(6));
    }

    @Test
    void allHeadsEmptyGivesZerosAndNegativeInfinity() {
        check(new AttentionShape(3, 2, 16, 0, 32), new long[] {0, 0, 0}, 2, 1.0f, 0, new Random(7));
    }

    @Test
    void largeGroupAndOddHeadDim() {
        // group 32 (query heads beyond one pass of the microkernels), head dims that are not multiples of 8 or 16
        check(new AttentionShape(1, 32, 40, 0, 32), new long[] {700}, 1, 1.0f, 0, new Random(8));
        check(new AttentionShape(2, 3, 20, 1, 7), new long[] {50, 401}, 2, 1.0f, 0, new Random(9));
        check(new AttentionShape(2, 5, 1, 2, 5), new long[] {13, 1}, 1, 1.0f, 0, new Random(10));
    }

    @Test
    void quantisedRowsOfEveryGroupLayout() {
        // q8_0 (3) and q4_0 (4): one group per row below head dim 32 (16: a zmm of low + high nibbles, 24: groups
        // that straddle the nibble halves lane by lane, 2: the scalar tail), several groups of 32 above, peaked
        // scores, both instruction sets, split heads
        for (int isa : new int[] {1, 0}) {
            NativeAttention.setInstructionSet(isa);
            for (int dtype = 3; dtype <= 4; dtype++) {
                for (int headDim : new int[] {2, 16, 24, 32, 96, 256}) {
                    check(new AttentionShape(2, 3, headDim, dtype, 16), new long[] {70, 301}, 1, 1.0f, 0,
                            new Random(headDim + 100L * dtype));
                }
                check(new AttentionShape(2, 4, 64, dtype, 32), new long[] {3000, 100}, 1, 30.0f, 0, new Random(6));
                check(new AttentionShape(3, 4, 128, dtype, 32), new long[] {40000, 3, 70000}, 2, 1.0f, 0,
                        new Random(1));
            }
        }
    }

    @Test
    void keyAndValueRowsOfDifferentTypes() {
        // each (K dtype, V dtype) pair: the score loop reads K as its type, the value loop V as its type; both
        // instruction sets, group layouts below and above 32, a split head
        int[][] pairs = {{3, 4}, {4, 3}, {1, 3}, {0, 2}, {4, 0}, {2, 1}};
        for (int isa : new int[] {1, 0}) {
            NativeAttention.setInstructionSet(isa);
            for (int[] p : pairs) {
                for (int headDim : new int[] {8, 64}) {
                    check(new AttentionShape(2, 3, headDim, p[0], p[1], 16), new long[] {70, 3001}, 2, 1.0f, 0,
                            new Random(headDim + 10L * p[0] + p[1]));
                }
            }
        }
    }

    /**
     * f32 on both sides: 1e-5; a quantised side with the other f32 or quantised: 1e-5 relative to the output's
     * magnitude (the reference reads the same dequantised rows); an f16 or bf16 side: 2e-3.
     */
    static double tolerance(AttentionShape shape, double maxRef) {
        io.kvslab.DType k = shape.keyType();
        io.kvslab.DType v = shape.valueType();
        if (k == io.kvslab.DType.F32 && v == io.kvslab.DType.F32) {
            return 1e-5;
        }
        boolean halfWidth = k == io.kvslab.DType.F16 || k == io.kvslab.DType.BF16 || v == io.kvslab.DType.F16
                || v == io.kvslab.DType.BF16;
        return halfWidth ? 2e-3 : 1e-5 * Math.max(1, maxRef);
    }

    /** Builds the cache, runs the kernel, compares out and lse with the reference. */
    static void check(AttentionShape shape, long[] lengths, int threads, float keyScale, int spare, Random rnd) {
        try (Arena arena = Arena.ofConfined()) {
            PagedKv kv = new PagedKv(arena, shape, lengths, rnd, spare, keyScale);
            int qf = (int) shape.tokenFloats();
            float[] q = new float[qf];
            for (int i = 0; i < qf; i++) {
                q[i] = PagedKv.unit(rnd);
            }
            float scale = (float) (1.0 / Math.sqrt(shape.headDim()));
            MemorySegment qs = arena.allocateFrom(JAVA_FLOAT, q);
            MemorySegment out = arena.allocate(JAVA_FLOAT, qf);
            MemorySegment lse = arena.allocate(JAVA_FLOAT, shape.queryHeads());
            out.fill((byte) 0x7F); // garbage: every element must be written
            NativeAttention.decode(shape, qs, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale, out,
                    lse, threads);
            double[] ref = new double[qf];
            double[] refLse = new double[shape.queryHeads()];
            kv.reference(q, 0, scale, lengths, ref, refLse);
            double maxErr = 0;
            double maxRef = 0;
            for (int i = 0; i < qf; i++) {
                maxErr = Math.max(maxErr, Math.abs(ref[i] - out.getAtIndex(JAVA_FLOAT, i)));
                maxRef = Math.max(maxRef, Math.abs(ref[i]));
            }
            // quantised: within 1e-5 of the reference over the same dequantised rows, relative to its magnitude
            double tol = tolerance(shape, maxRef);
            String what = shape + " lengths " + java.util.Arrays.toString(lengths) + " threads " + threads;
            assertTrue(maxErr <= tol, "max abs error " + maxErr + " > " + tol + " for " + what);
            for (int qh = 0; qh < shape.queryHeads(); qh++) {
                float got = lse.getAtIndex(JAVA_FLOAT, qh);
                if (Double.isInfinite(refLse[qh])) {
                    assertEquals(Float.NEGATIVE_INFINITY, got, "lse of an empty head, " + what);
                } else {
                    assertEquals(refLse[qh], got, 1e-4 * Math.max(1, Math.abs(refLse[qh])), "lse[" + qh + "] " + what);
                }
            }
        }
    }
}
