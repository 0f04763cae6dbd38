package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A one-token append that stays inside its blocks allocates no heap memory (issue #13: nothing on the hot path
 * allocates), counted by the thread's allocated-bytes counter; and what it wrote reads back unchanged.
 */
class AppendAllocationTest {
    /**
     * {@code com.sun.management.ThreadMXBean.getCurrentThreadAllocatedBytes()}, bound reflectively (the test
     * compiles as part of the library module, which does not read java.management) and called without boxing.
     */
    private static long allocatedBytes(MethodHandle counter, Object bean) throws Throwable {
        return (long) counter.invokeExact(bean);
    }

    private static MethodHandle counter() throws ReflectiveOperationException {
        Class<?> type = Class.forName("com.sun.management.ThreadMXBean");
        return MethodHandles.publicLookup().findVirtual(type, "getCurrentThreadAllocatedBytes",
                MethodType.methodType(long.class)).asType(MethodType.methodType(long.class, Object.class));
    }

    @Test
    void appendInsideABlockAllocatesNothingAndStoresTheRows() throws Throwable {
        MethodHandle counter = counter();
        Object mx = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean").invoke(null);
        int heads = 4;
        int dim = 16;
        int tpb = 64;
        float[] k = new float[heads * dim];
        float[] v = new float[heads * dim];
        for (int i = 0; i < k.length; i++) {
            k[i] = i * 0.25f;
            v[i] = -i * 0.5f;
        }
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
                seq.append(0, k, v, pos++);
                long before = allocatedBytes(counter, mx);
                for (int i = 0; i < tpb - 2; i++) {
                    seq.append(0, k, v, pos++);
                }
                best = Math.min(best, allocatedBytes(counter, mx) - before);
                seq.append(0, k, v, pos++);
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
