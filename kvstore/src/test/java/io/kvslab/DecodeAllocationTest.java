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
 * {@code values()} (two lookups per call). The native path only (this class is not in the java-fallback
 * execution): the plain-Java kernel allocates its row buffers per call.
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
