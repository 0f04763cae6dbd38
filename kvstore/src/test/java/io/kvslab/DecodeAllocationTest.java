package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A decode step over an unchanged sequence allocates no heap memory (issue #13: nothing on the hot path allocates),
 * with the caller's tensors as float arrays and as native segments, counted by the thread's allocated-bytes counter;
 * and the outputs of both are the same bits. It read 80 bytes per call before {@link DType#ofCode} stopped cloning
 * {@code values()} (two lookups per call). The same for a batched call over sequences of different lengths, one of
 * them twice, with native and with heap tensors: it allocated 1.1-4.6 KB per call until the batch's tables went into
 * one packed scratch region (no list, slice records or segments per sequence). The native path only (this class is
 * not in the java-fallback execution): the plain-Java kernel allocates its row buffers per call.
 */
class DecodeAllocationTest {
    private interface Decode {
        void run() throws Throwable;
    }

    @Test
    void decodeOfArraysAndOfNativeSegmentsAllocatesNothing() throws Throwable {
        KvLayout layout = new KvLayout(1, 8, 4, 64, DType.F16, 16);
        Random rnd = new Random(3);
        try (KvStore store = KvStore.open(layout); Attention att = Attention.create(2); Arena arena = Arena.ofConfined();
             Sequence seq = store.newSequence()) {
            SequenceAttentionTest.fill(seq, rnd, 300);
            int width = layout.queryHeads() * layout.headDim();
            float[] q = SequenceAttentionTest.random(rnd, width, 1f);
            float[] out = new float[width];
            MemorySegment qs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, q);
            MemorySegment outs = arena.allocate(ValueLayout.JAVA_FLOAT, width);
            assertEquals(0, leastBytes(() -> att.decode(seq, 0, q, out)), "bytes allocated by 50 decodes of arrays");
            assertEquals(0, leastBytes(() -> att.decode(seq, 0, qs, outs)), "bytes allocated by 50 decodes of segments");
            assertArrayEquals(out, outs.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    @Test
    void batchedDecodeAllocatesNothing() throws Throwable {
        KvLayout layout = new KvLayout(2, 8, 4, 64, DType.F16, 16);
        Random rnd = new Random(5);
        try (KvStore store = KvStore.open(layout); Attention att = Attention.create(2); Arena arena = Arena.ofConfined();
             Sequence a = store.newSequence(); Sequence b = store.newSequence(); Sequence c = store.newSequence()) {
            SequenceAttentionTest.fill(a, rnd, 300);
            SequenceAttentionTest.fill(b, rnd, 17);
            SequenceAttentionTest.fill(c, rnd, 1000);
            java.util.List<Sequence> batch = new java.util.ArrayList<>(java.util.List.of(c, a, b, a));
            int n = batch.size();
            int width = layout.queryHeads() * layout.headDim();
            float[] q = SequenceAttentionTest.random(rnd, n * width, 1f);
            MemorySegment qs = arena.allocateFrom(ValueLayout.JAVA_FLOAT, q);
            MemorySegment outs = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * width);
            MemorySegment lse = arena.allocate(ValueLayout.JAVA_FLOAT, (long) n * layout.queryHeads());
            MemorySegment heapQ = MemorySegment.ofArray(q);
            MemorySegment heapOut = MemorySegment.ofArray(new float[n * width]);
            MemorySegment heapLse = MemorySegment.ofArray(new float[n * layout.queryHeads()]);
            assertEquals(0, leastBytes(() -> att.decodeBatch(1, batch, qs, outs, lse)),
                    "bytes allocated by 50 batched decodes of native segments");
            assertEquals(0, leastBytes(() -> att.decodeBatch(1, batch, heapQ, heapOut, heapLse)),
                    "bytes allocated by 50 batched decodes of heap segments");
            // a batch size that changes from call to call (a server's batch grows and shrinks), heap tensors
            java.util.List<Sequence> shorter = batch.subList(0, 2);
            int shortFloats = 2 * width;
            MemorySegment heapQ2 = MemorySegment.ofArray(java.util.Arrays.copyOf(q, shortFloats));
            MemorySegment heapOut2 = MemorySegment.ofArray(new float[shortFloats]);
            assertEquals(0, leastBytes(() -> {
                att.decodeBatch(1, batch, heapQ, heapOut, heapLse);
                att.decodeBatch(1, shorter, heapQ2, heapOut2);
            }), "bytes allocated by 50 pairs of batched decodes of 4 and 2 sequences");
            // what the calls computed: each row bitwise a single decode of its sequence, lse included
            float[] one = new float[width];
            float[] oneLse = new float[layout.queryHeads()];
            long rowBytes = (long) width * Float.BYTES;
            long lseRow = (long) layout.queryHeads() * Float.BYTES;
            for (int i = 0; i < n; i++) {
                att.decode(batch.get(i), 1, java.util.Arrays.copyOfRange(q, i * width, (i + 1) * width), one,
                        oneLse);
                assertArrayEquals(one, outs.asSlice(i * rowBytes, rowBytes).toArray(ValueLayout.JAVA_FLOAT), "row " + i);
                assertArrayEquals(one, heapOut.asSlice(i * rowBytes, rowBytes).toArray(ValueLayout.JAVA_FLOAT),
                        "row " + i + " (heap)");
                assertArrayEquals(oneLse, lse.asSlice(i * lseRow, lseRow).toArray(ValueLayout.JAVA_FLOAT), "lse " + i);
                assertArrayEquals(oneLse, heapLse.asSlice(i * lseRow, lseRow).toArray(ValueLayout.JAVA_FLOAT),
                        "lse " + i + " (heap)");
                if (i < 2) {
                    assertArrayEquals(one, heapOut2.asSlice(i * rowBytes, rowBytes).toArray(ValueLayout.JAVA_FLOAT),
                            "row " + i + " of the 2-sequence batch");
                }
            }
        }
    }

    /**
     * The least bytes allocated by 50 calls over repeated windows: until the JIT has compiled the path, the JDK's own
     * temporaries (heap-segment wrappers) are still allocated, so windows go on until one reads 0, for at most 60 s.
     */
    private static long leastBytes(Decode decode) throws Throwable {
        ThreadAllocation allocated = new ThreadAllocation();
        long best = Long.MAX_VALUE;
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (best != 0 && System.nanoTime() < deadline) {
            long before = allocated.bytes();
            for (int i = 0; i < 50; i++) {
                decode.run();
            }
            best = Math.min(best, allocated.bytes() - before);
        }
        return best;
    }
}
