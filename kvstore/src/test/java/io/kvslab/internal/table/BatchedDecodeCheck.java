package io.kvslab.internal.table;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The check the low-precision kernel paths share: two sequences of ragged lengths (one KV head of each empty or
 * nearly) decoded in one batched call give each single call's output bit for bit, and that output differs from the
 * same decode under {@code other} (so the batch really took the path {@code shape} names).
 */
final class BatchedDecodeCheck {
    private BatchedDecodeCheck() {}

    static void batchEqualsSinglesAndDiffersFrom(AttentionShape shape, AttentionShape other, long seed) {
        Random rnd = new Random(seed);
        try (Arena arena = Arena.ofConfined()) {
            PagedKv a = new PagedKv(arena, shape, new long[] {3000, 10}, rnd, 0, 1.0f);
            PagedKv b = new PagedKv(arena, shape, new long[] {0, 700}, rnd, 0, 1.0f);
            int qf = (int) shape.tokenFloats();
            long tokenBytes = (long) qf * Float.BYTES;
            MemorySegment q = arena.allocate(JAVA_FLOAT, 2L * qf);
            for (long i = 0; i < 2L * qf; i++) {
                q.setAtIndex(JAVA_FLOAT, i, PagedKv.unit(rnd));
            }
            MemorySegment out = arena.allocate(JAVA_FLOAT, 2L * qf);
            float scale = 0.0883f;
            NativeAttention.decodeBatch(shape, 2, q, out, null, PagedKv.packBatch(arena, a, b), scale, 2);
            PagedKv[] kvs = {a, b};
            for (int i = 0; i < 2; i++) {
                MemorySegment qi = q.asSlice(i * tokenBytes, tokenBytes);
                MemorySegment one = arena.allocate(JAVA_FLOAT, qf);
                NativeAttention.decode(shape, qi, kvs[i].keyBlocks, kvs[i].valueBlocks, kvs[i].offsets,
                        kvs[i].lengthSegment, scale, one, null, 2);
                assertArrayEquals(one.toArray(JAVA_FLOAT), out.asSlice(i * tokenBytes, tokenBytes).toArray(JAVA_FLOAT),
                        "sequence " + i);
                MemorySegment otherOut = arena.allocate(JAVA_FLOAT, qf);
                NativeAttention.decode(other, qi, kvs[i].keyBlocks, kvs[i].valueBlocks, kvs[i].offsets,
                        kvs[i].lengthSegment, scale, otherOut, null, 2);
                assertFalse(Arrays.equals(otherOut.toArray(JAVA_FLOAT), one.toArray(JAVA_FLOAT)), "sequence " + i);
            }
        }
    }
}
