package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A one-token append that stays inside its blocks allocates no heap memory (issue #13: nothing on the hot path
 * allocates), counted by the thread's allocated-bytes counter; and what it wrote reads back unchanged.
 */
class AppendAllocationTest {
    /** One token's rows of one layer, appended one way or another. */
    private interface Append {
        void to(Sequence seq, long position);
    }

    @Test
    void appendInsideABlockAllocatesNothingAndStoresTheRows() throws Throwable {
        float[][] kv = rows();
        check((seq, pos) -> seq.append(0, kv[0], kv[1], pos), kv);
    }

    /**
     * The same through f16 tensors (the one-token f16 path that copies a layer's rows in one native call, or in Java
     * without the library): the tensors are made once, as a caller's reused buffers would be.
     */
    @Test
    void appendOfF16TensorsInsideABlockAllocatesNothingAndStoresTheRows() throws Throwable {
        float[][] kv = rows();
        MemorySegment ks = Arena.ofAuto().allocate(2L * kv[0].length, 64);
        MemorySegment vs = Arena.ofAuto().allocate(2L * kv[1].length, 64);
        for (int i = 0; i < kv[0].length; i++) {
            ks.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(kv[0][i]));
            vs.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(kv[1][i]));
        }
        KvTensor k = KvTensor.of(ks, DType.F16, 1, HEADS, DIM);
        KvTensor v = KvTensor.of(vs, DType.F16, 1, HEADS, DIM);
        check((seq, pos) -> seq.append(0, k, v, pos), kv);
    }

    private static final int HEADS = 4;
    private static final int DIM = 16;

    private static float[][] rows() {
        float[] k = new float[HEADS * DIM];
        float[] v = new float[HEADS * DIM];
        for (int i = 0; i < k.length; i++) {
            k[i] = i * 0.25f;
            v[i] = -i * 0.5f;
        }
        return new float[][] {k, v};
    }

    private static void check(Append append, float[][] kv) throws Throwable {
        ThreadAllocation allocated = new ThreadAllocation();
        int heads = HEADS;
        int dim = DIM;
        int tpb = 64;
        float[] k = kv[0];
        float[] v = kv[1];
        try (KvStore store = KvStore.open(new KvLayout(1, heads, heads, dim, DType.F16, tpb))) {
            Sequence seq = store.newSequence();
            long pos = 0;
            long best = Long.MAX_VALUE;
            // Each attempt starts at a block boundary (that append may allocate the new block list), then measures
            // the next tpb - 2 appends, which stay inside the block. Until the JIT has compiled the path, the JDK's
            // own temporaries (heap-segment wrappers of a copy) are still allocated, so attempts go on until one
            // window reads 0, for at most 60 s (the sequence restarts every 100 blocks to bound its memory).
            long deadline = System.nanoTime() + 60_000_000_000L;
            for (int attempt = 0; best != 0 && System.nanoTime() < deadline; attempt++) {
                if (attempt % 100 == 99) {
                    seq.close();
                    seq = store.newSequence();
                    pos = 0;
                }
                append.to(seq, pos++);
                long before = allocated.bytes();
                for (int i = 0; i < tpb - 2; i++) {
                    append.to(seq, pos++);
                }
                best = Math.min(best, allocated.bytes() - before);
                append.to(seq, pos++);
            }
            assertEquals(0, best, "bytes allocated by " + (tpb - 2) + " in-block appends");
            for (int h = 0; h < heads; h++) {
                float[] kOut = new float[(int) pos * dim];
                float[] vOut = new float[(int) pos * dim];
                seq.readKeys(0, h, kOut);
                seq.readValues(0, h, vOut);
                for (int t = 0; t < pos; t++) {
                    for (int d = 0; d < dim; d++) {   // exact in f16: multiples of 1/4 below 64
                        assertEquals(k[h * dim + d], kOut[t * dim + d], "k head " + h + " token " + t);
                        assertEquals(v[h * dim + d], vOut[t * dim + d], "v head " + h + " token " + t);
                    }
                }
            }
            seq.close();
        }
    }
}
