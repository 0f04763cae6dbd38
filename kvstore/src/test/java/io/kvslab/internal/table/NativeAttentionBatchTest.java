package io.kvslab.internal.table;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batched binding ({@code kvs_attn_decode_batch}) against the single-sequence one: every row bitwise equal to
 * {@link NativeAttention#decode} on it with the same thread count (sequences cut into several chunks and merged
 * included), for every dtype, GQA group and both instruction sets, and against the double-precision reference;
 * batch-level validation rejects outputs over inputs, a tables region too small for its descriptors or for a
 * table's own extent, a misaligned one and a bad table in any row, writing nothing.
 */
class NativeAttentionBatchTest {
    @AfterAll
    static void restoreInstructionSet() {
        NativeAttention.setInstructionSet(0);
    }

    @Test
    void everyRowEqualsItsSingleCallBitwise() {
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
            PagedKv[] kvs = new PagedKv[n];
            for (int i = 0; i < n; i++) {
                // spare blocks: the packed tables must carry every address of a head's range, used or not
                kvs[i] = new PagedKv(arena, shape, lengths[i], rnd, i % 2, 1.0f);
            }
            NativeAttention.decodeBatch(shape, n, q, out, lse, PagedKv.packBatch(arena, kvs), scale, threads);
            for (int i = 0; i < n; i++) {
                PagedKv kv = kvs[i];
                MemorySegment qi = q.asSlice(i * tokenBytes, tokenBytes);
                MemorySegment one = arena.allocate(tokenBytes, 64);
                MemorySegment oneLse = arena.allocate(lseBytes, 64);
                NativeAttention.decode(shape, qi, kv.keyBlocks, kv.valueBlocks, kv.offsets, kv.lengthSegment, scale,
                        one, oneLse, threads);
                String what = shape + " threads " + threads + " row " + i;
                assertArrayEquals(one.toArray(JAVA_FLOAT), out.asSlice(i * tokenBytes, tokenBytes).toArray(JAVA_FLOAT),
                        what);
                assertArrayEquals(oneLse.toArray(JAVA_FLOAT), lse.asSlice(i * lseBytes, lseBytes).toArray(JAVA_FLOAT),
                        what);
                double[] ref = new double[(int) shape.tokenFloats()];
                double[] refLse = new double[shape.queryHeads()];
                kv.reference(qi.toArray(JAVA_FLOAT), 0, scale, lengths[i], ref, refLse);
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
            MemorySegment tables = PagedKv.packBatch(arena, a, b);
            byte[] tablesBefore = tables.toArray(ValueLayout.JAVA_BYTE);
            // the output over the queries
            MemorySegment qAndOut = arena.allocate(tokenBytes * 3, 64);
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, qAndOut.asSlice(0, 2 * tokenBytes),
                    qAndOut.asSlice(tokenBytes, 2 * tokenBytes), null, tables, 0.25f, 1), "overlaps");
            // the output over the tables, and lse over the output
            MemorySegment shared = arena.allocate(tables.byteSize() + 2 * tokenBytes, 8);
            MemorySegment.copy(tables, 0, shared, 0, tables.byteSize());
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, shared.asSlice(tables.byteSize() - 8,
                    2 * tokenBytes), null, shared.asSlice(0, tables.byteSize()), 0.25f, 1), "overlaps");
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, out.asSlice(0, 32), tables, 0.25f, 1),
                    "overlaps");
            // q and out too small for the batch, tables too small for its descriptors or for the second table
            assertRejected(() -> NativeAttention.decodeBatch(shape, 3, q, out, null, tables, 0.25f, 1), "q");
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null,
                    tables.asSlice(0, NativeAttention.DESCRIPTOR_BYTES), 0.25f, 1), "tables");
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null,
                    tables.asSlice(0, tables.byteSize() - 8), 0.25f, 1), "room for");
            long secondAt = NativeAttention.DESCRIPTOR_BYTES * 2 + 8 * NativeAttention.packedTableLongs(2,
                    a.offsets.getAtIndex(JAVA_LONG, 2));
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null,
                    tables.asSlice(0, NativeAttention.packedKeysAt(secondAt, 2) - 8), 0.25f, 1), "offsets and lengths");
            // not 8-byte aligned, a negative count
            MemorySegment odd = arena.allocate(tables.byteSize() + 4, 8).asSlice(4);
            MemorySegment.copy(tables, 0, odd, 0, tables.byteSize());
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null, odd, 0.25f, 1), "aligned");
            assertRejected(() -> NativeAttention.decodeBatch(shape, -1, q, out, null, tables, 0.25f, 1), "n must");
            // a bad table in the second row: a head with more rows than blocks
            MemorySegment badTables = PagedKv.packBatch(arena, a, b);
            badTables.set(JAVA_LONG, NativeAttention.packedLengthsAt(secondAt, 2) + 8, 100);
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null, badTables, 0.25f, 1), "head 1");
            // a block count past the region
            MemorySegment hugeTables = PagedKv.packBatch(arena, a, b);
            hugeTables.set(JAVA_LONG, secondAt + 16, Long.MAX_VALUE / 4);
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null, hugeTables, 0.25f, 1),
                    "room for");
            MemorySegment negativeTables = PagedKv.packBatch(arena, a, b);
            negativeTables.set(JAVA_LONG, secondAt + 16, -1);
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, q, out, null, negativeTables, 0.25f, 1),
                    "room for");
            // q over the tables' descriptors, which the call writes
            MemorySegment qOverTables = arena.allocate(tables.byteSize() + 2 * tokenBytes, 8);
            MemorySegment.copy(tables, 0, qOverTables, 2 * tokenBytes - 8, tables.byteSize());
            assertRejected(() -> NativeAttention.decodeBatch(shape, 2, qOverTables.asSlice(0, 2 * tokenBytes), out,
                    null, qOverTables.asSlice(2 * tokenBytes - 8, tables.byteSize()), 0.25f, 1), "overlaps");
            for (long i = 0; i < out.byteSize(); i++) {
                assertEquals((byte) 0x5A, out.get(ValueLayout.JAVA_BYTE, i), "a rejected batch wrote out");
            }
            assertArrayEquals(tablesBefore, tables.toArray(ValueLayout.JAVA_BYTE), "a rejected batch wrote tables");
            NativeAttention.decodeBatch(shape, 2, q, out, null, tables, 0.25f, 2);
            PagedKv[] kvs = {a, b};
            for (int i = 0; i < 2; i++) {
                MemorySegment one = arena.allocate(tokenBytes, 64);
                NativeAttention.decode(shape, q.asSlice(i * tokenBytes, tokenBytes), kvs[i].keyBlocks,
                        kvs[i].valueBlocks, kvs[i].offsets, kvs[i].lengthSegment, 0.25f, one, null, 2);
                assertArrayEquals(one.toArray(JAVA_FLOAT), out.asSlice(i * tokenBytes, tokenBytes).toArray(JAVA_FLOAT),
                        "row " + i + " after the rejected calls");
            }
            NativeAttention.decodeBatch(shape, 0, q, out, null, tables, 0.25f, 2); // an empty batch does nothing
        }
    }

    private static void assertRejected(org.junit.jupiter.api.function.Executable call, String messagePart) {
        KernelArgumentException e = assertThrows(KernelArgumentException.class, call);
        assertTrue(e.getMessage().contains(messagePart), e.getMessage());
    }
}
