package io.kvslab.internal.table;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batched binding ({@code kvs_attn_decode_batch}) against the single-sequence one: every slice bitwise equal to
 * {@link NativeAttention#decode} on it with the same thread count (sequences cut into several chunks and merged
 * included), for every dtype, GQA group and both instruction sets, and against the double-precision reference;
 * batch-level validation rejects overlapping outputs across slices, a small descriptor buffer and a bad table in
 * any slice, writing nothing.
 */
class NativeAttentionBatchTest {
    @AfterAll
    static void restoreInstructionSet() {
        NativeAttention.setInstructionSet(0);
    }

    @Test
    void everySliceEqualsItsSingleCallBitwise() {
        long[][] lengths = {{0, 0}, {3000, 17}, {1, 64}, {5000, 4999}, {0, 900}, {33, 2}};
        int check = 0;
        for (int dtype = 0; dtype < 3; dtype++) {
            for (int group : new int[] {1, 4}) {
                for (int isa : new int[] {1, 0}) {
                    NativeAttention.setInstructionSet(isa);
                    for (int threads : new int[] {1, 3}) {
                        AttentionShape shape = new AttentionShape(2, group, 64, dtype, 16);
                        compare(shape, lengths, threads, new Random(check++));
                    }
                }
            }
        }
    }

    private static void compare(AttentionShape shape, long[][] lengths, int threads, Random rnd) {
        try (Arena arena = Arena.ofConfined()) {
            int n = lengths.length;
            long tokenBytes = shape.tokenFloats() * Float.BYTES;
            long lseBytes = shape.queryHeads() * 4L;
            float scale = (float) (1.0 / Math.sqrt(shape.headDim()));
            MemorySegment q = arena.allocate(tokenBytes * n, 64);
            for (long i = 0; i < q.byteSize() / 4; i++) {
                q.setAtIndex(JAVA_FLOAT, i, PagedKv.unit(rnd));
            }
            MemorySegment out = arena.allocate(tokenBytes * n, 64);
            MemorySegment lse = arena.allocate(lseBytes * n, 64);
            out.fill((byte) 0x7F);
            List<PagedKv> kvs = new ArrayList<>();
            List<NativeAttention.DecodeSlice> slices = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                PagedKv kv = new PagedKv(arena, shape, lengths[i], rnd, 0, 1.0f);
                kvs.add(kv);
                slices.add(new NativeAttention.DecodeSlice(q.asSlice(i * tokenBytes, tokenBytes),
                        out.asSlice(i * tokenBytes, tokenBytes), lse.asSlice(i * lseBytes, lseBytes), kv.keyBlocks,
                        kv.valueBlocks, kv.offsets, kv.lengthSegment));
            }
            MemorySegment descriptors = arena.allocate(NativeAttention.DESCRIPTOR_BYTES * n, 8);
            NativeAttention.decodeBatch(shape, slices, descriptors, scale, threads);
            for (int i = 0; i < n; i++) {
                PagedKv kv = kvs.get(i);
                MemorySegment one = arena.allocate(tokenBytes, 64);
                MemorySegment oneLse = arena.allocate(lseBytes, 64);
                NativeAttention.decode(shape, slices.get(i).q(), kv.keyBlocks, kv.valueBlocks, kv.offsets,
                        kv.lengthSegment, scale, one, oneLse, threads);
                String what = shape + " threads " + threads + " slice " + i;
                assertArrayEquals(one.toArray(JAVA_FLOAT), slices.get(i).out().toArray(JAVA_FLOAT), what);
                assertArrayEquals(oneLse.toArray(JAVA_FLOAT), slices.get(i).lse().toArray(JAVA_FLOAT), what);
                double[] ref = new double[(int) shape.tokenFloats()];
                double[] refLse = new double[shape.queryHeads()];
                kv.reference(slices.get(i).q().toArray(JAVA_FLOAT), 0, scale, lengths[i], ref, refLse);
                double tol = shape.dtype() == 0 ? 1e-5 : 2e-3;
                for (int j = 0; j < ref.length; j++) {
                    assertEquals(ref[j], one.getAtIndex(JAVA_FLOAT, j), tol, what + " element " + j);
                }
            }
        }
    }

    @Test
    void batchArgumentsAreCheckedTogether() {
        AttentionShape shape = new AttentionShape(2, 2, 16, 0, 8);
        try (Arena arena = Arena.ofConfined()) {
            Random rnd = new Random(4);
            long tokenBytes = shape.tokenFloats() * Float.BYTES;
            PagedKv a = new PagedKv(arena, shape, new long[] {20, 9}, rnd, 0, 1f);
            PagedKv b = new PagedKv(arena, shape, new long[] {5, 0}, rnd, 0, 1f);
            MemorySegment q = arena.allocate(tokenBytes * 2, 64);
            MemorySegment out = arena.allocate(tokenBytes * 2, 64);
            out.fill((byte) 0x5A);
            MemorySegment descriptors = arena.allocate(NativeAttention.DESCRIPTOR_BYTES * 2, 8);
            MemorySegment q0 = q.asSlice(0, tokenBytes);
            MemorySegment q1 = q.asSlice(tokenBytes, tokenBytes);
            MemorySegment out0 = out.asSlice(0, tokenBytes);
            MemorySegment out1 = out.asSlice(tokenBytes, tokenBytes);
            var sa = new NativeAttention.DecodeSlice(q0, out0, null, a.keyBlocks, a.valueBlocks, a.offsets,
                    a.lengthSegment);
            // two slices writing the same output
            var sameOut = new NativeAttention.DecodeSlice(q1, out0, null, b.keyBlocks, b.valueBlocks, b.offsets,
                    b.lengthSegment);
            assertThrows(KernelArgumentException.class,
                    () -> NativeAttention.decodeBatch(shape, List.of(sa, sameOut), descriptors, 0.25f, 1));
            // one slice's output over the other's query
            var outOverQ = new NativeAttention.DecodeSlice(q1, q0, null, b.keyBlocks, b.valueBlocks, b.offsets,
                    b.lengthSegment);
            assertThrows(KernelArgumentException.class,
                    () -> NativeAttention.decodeBatch(shape, List.of(sa, outOverQ), descriptors, 0.25f, 1));
            var sb = new NativeAttention.DecodeSlice(q1, out1, null, b.keyBlocks, b.valueBlocks, b.offsets,
                    b.lengthSegment);
            assertThrows(KernelArgumentException.class, () -> NativeAttention.decodeBatch(shape, List.of(sa, sb),
                    descriptors.asSlice(0, NativeAttention.DESCRIPTOR_BYTES), 0.25f, 1));
            // descriptors over an argument
            assertThrows(KernelArgumentException.class,
                    () -> NativeAttention.decodeBatch(shape, List.of(sa, sb), out, 0.25f, 1));
            // a bad table in the second slice: a head with more rows than blocks
            MemorySegment badLengths = arena.allocateFrom(ValueLayout.JAVA_LONG, 5, 100);
            var bad = new NativeAttention.DecodeSlice(q1, out1, null, b.keyBlocks, b.valueBlocks, b.offsets,
                    badLengths);
            KernelArgumentException e = assertThrows(KernelArgumentException.class,
                    () -> NativeAttention.decodeBatch(shape, List.of(sa, bad), descriptors, 0.25f, 1));
            assertTrue(e.getMessage().contains("head 1"), e.getMessage());
            for (long i = 0; i < out.byteSize(); i++) {
                assertEquals((byte) 0x5A, out.get(ValueLayout.JAVA_BYTE, i), "a rejected batch wrote out");
            }
            NativeAttention.decodeBatch(shape, List.of(sa, sb), descriptors, 0.25f, 2);
            NativeAttention.decodeBatch(shape, List.of(), descriptors, 0.25f, 2); // an empty batch does nothing
        }
    }
}
