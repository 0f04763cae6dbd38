package io.kvslab.reliability;

import io.kvslab.Attention;
import io.kvslab.ConcurrentUseException;
import io.kvslab.DType;
import io.kvslab.internal.table.KernelArgumentException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.internal.table.AttentionShape;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Ports of the audit's bad-input programs (B_QueryHeadsOverflow, E_BadInput, K_SharedAttention). */
class BadInputTest {
    // ---- B: shape products

    @Test
    void attentionShapeRejectsQueryHeadsThatOverflow() {
        KernelArgumentException e = assertThrows(KernelArgumentException.class,
                () -> new AttentionShape(65536, 32768, 1, 0, 1));
        assertTrue(e.getMessage().contains("query heads"), e.getMessage());
        assertThrows(KernelArgumentException.class, () -> new AttentionShape(256, 257, 1, 0, 1));   // 65792
        AttentionShape ok = new AttentionShape(256, 256, 65536, 0, 65536);
        assertEquals(65536, ok.queryHeads());
        assertEquals(65536L * 65536, ok.tokenFloats(), "computed in long");
        assertEquals(65536L * 4, ok.rowBytes());
    }

    @Test
    void layoutBoundsEveryDimensionAndTheTableFootprintBeforeAllocating() {
        // audit E row 14: 200000 layers x 4096 KV heads used to fail with a heap OutOfMemoryError at newSequence
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> new KvLayout(200_000, 4096, 4096, 8, DType.F16, 16));
        assertTrue(e.getMessage().contains("layers"), e.getMessage());
        e = assertThrows(KvArgumentException.class, () -> new KvLayout(4096, 4096, 4096, 8, DType.F16, 16));
        assertTrue(e.getMessage().contains("block tables"), e.getMessage());
        assertThrows(KvArgumentException.class, () -> new KvLayout(1, 65536 * 2, 1, 8, DType.F16, 16));
        assertThrows(KvArgumentException.class, () -> new KvLayout(1, 1, 1, 65536, DType.F32, 65536));   // 16 GiB block
        assertThrows(KvArgumentException.class, () -> new KvLayout(1, 65536, 1, 65536, DType.F32, 1));   // 2^32 floats
        new KvLayout(126, 128, 8, 128, DType.BF16, 32);   // the largest real models fit
    }

    // ---- E: values, staging, limits

    @Test
    void bf16RejectsFiniteValuesThatRoundToInfinity() {
        try (KvStore bf = KvStore.open(KvLayout.of(1, 1, 1, 64, DType.BF16)); Sequence s = bf.newSequence()) {
            float[] k = new float[64];
            float[] v = new float[64];
            Arrays.fill(v, 3.4e38f);
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> s.append(0, k, v, 0));
            assertTrue(e.getMessage().contains("BF16"), e.getMessage());
            assertEquals(0, s.length(0, 0), "nothing appended");
            // the largest value that rounds to a finite bf16 is accepted and reads back finite
            float edge = Float.intBitsToFloat(0x7F7F7FFF);
            Arrays.fill(v, edge);
            s.append(0, k, v, 0);
            float[] back = new float[64];
            s.readValues(0, 0, back);
            assertEquals(Float.intBitsToFloat(0x7F7F0000), back[0]);
            Arrays.fill(v, Float.intBitsToFloat(0x7F7F8000));   // rounds (to even) up to infinity
            assertThrows(KvArgumentException.class, () -> s.append(0, k, v, 1));
            Arrays.fill(v, -3.4e38f);
            assertThrows(KvArgumentException.class, () -> s.append(0, k, v, 1));
        }
    }

    @Test
    void stagingAHugeBlockCountIsALimitErrorNotAnOutOfMemoryError() {
        KvLayout layout = new KvLayout(2, 4, 2, 64, DType.F16, 16);
        try (KvStore st = KvStore.open(layout, new StoreConfig(layout.blockBytes() * 16, layout.blockBytes() * 4))) {
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> RawBlocks.stage(st, Integer.MAX_VALUE));
            assertEquals((long) Integer.MAX_VALUE * layout.blockBytes(), e.requestedBytes());
            assertEquals(0, st.stats().liveBlocks());
            assertEquals(0, st.stats().reservedBytes(), "nothing reserved");
            assertThrows(KvArgumentException.class, () -> RawBlocks.stage(st, -1));
            RawBlocks.stage(st, 16).close();   // exactly the limit is fine
            assertEquals(0, st.stats().liveBlocks());
        }
    }

    @Test
    void blockIdsAreOpaqueIdentitiesNotHandles() {
        try (KvStore st = KvStore.open(KvLayout.of(1, 2, 2, 8, DType.F32)); Sequence s = st.newSequence()) {
            LifetimeTest.fill(s, 0, 70, 1f);
            try (Sequence f = s.fork()) {
                long[] a = RawBlocks.blockIds(s, 0, 1, true);
                assertArrayEquals(a, RawBlocks.blockIds(f, 0, 1, true), "a fork names the same blocks");
                for (long id : a) {
                    assertEquals(0, id >>> 32, "no generation bits: not a handle");
                }
            }
        }
    }

    // ---- K: one Attention shared by two threads

    @Test
    void attentionSharedByTwoThreadsFailsTypedAndNeverComputesWrongOutput() throws Exception {
        KvLayout layout = new KvLayout(1, 4, 4, 64, DType.F32, 16);
        try (KvStore store = KvStore.open(layout); Sequence small = store.newSequence();
             Sequence big = store.newSequence(); Attention shared = Attention.create(2)) {
            LifetimeTest.fill(small, 0, 40, 1f);
            LifetimeTest.fill(big, 0, 4000, 1f);
            AtomicLong wrong = new AtomicLong();
            AtomicLong refused = new AtomicLong();
            AtomicLong calls = new AtomicLong();
            AtomicReference<Throwable> other = new AtomicReference<>();
            Runnable r = () -> {
                float[] q = new float[4 * 64];
                float[] out = new float[4 * 64];
                for (int i = 0; i < 3000; i++) {
                    Arrays.fill(out, 0f);
                    try {
                        shared.decode((i & 1) == 0 ? small : big, 0, q, out);
                        calls.incrementAndGet();
                        for (float x : out) {
                            if (x != 1f) {
                                wrong.incrementAndGet();   // V rows are all 1: the output must be 1
                                break;
                            }
                        }
                    } catch (ConcurrentUseException e) {
                        refused.incrementAndGet();
                    } catch (Throwable t) {
                        other.compareAndSet(null, t);
                    }
                }
            };
            Thread t1 = new Thread(r);
            Thread t2 = new Thread(r);
            t1.start();
            t2.start();
            t1.join();
            t2.join();
            assertNull(other.get());
            assertEquals(0, wrong.get(), "outputs != 1 among " + calls + " calls");
            assertEquals(6000, calls.get() + refused.get());
            assertTrue(calls.get() > 0);
        }
    }
}
