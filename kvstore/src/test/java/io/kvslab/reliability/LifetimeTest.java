package io.kvslab.reliability;

import io.kvslab.Attention;
import io.kvslab.ClosedException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.internal.table.TableAccess;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ports of the audit's lifetime programs (A_BogusAddress, A2_StaleAddress, D_Deadlocks, J_DoubleClose) to the
 * API that has no address path any more: the same misuse now ends in a typed exception, never a fault or a hang.
 * {@code assertTimeoutPreemptively} is only a hang guard (generous bound), not a speed assertion.
 */
class LifetimeTest {
    private static final Duration HANG_GUARD = Duration.ofSeconds(60);
    private static final KvLayout LAYOUT = new KvLayout(1, 8, 8, 128, DType.F32, 32);

    static void fill(Sequence s, int layer, int tokens, float value) {
        float[] kv = new float[s.layout().kvHeads() * s.layout().headDim()];
        Arrays.fill(kv, value);
        for (int t = 0; t < tokens; t++) {
            s.append(layer, kv, kv, t);
        }
    }

    // ---- A / A2: there is no address to keep; a decode after close is a typed error

    @Test
    void decodeAfterStoreCloseIsAClosedException() {
        KvStore store = KvStore.open(LAYOUT, StoreConfig.defaults().withSlabBytes(64L << 20));
        Sequence s = store.newSequence();
        fill(s, 0, 4096, 0.25f);
        float[] q = new float[8 * 128];
        float[] out = new float[q.length];
        try (Attention att = Attention.create(1)) {
            att.decode(s, 0, q, out);                 // a legitimate call first
            assertEquals(0.25f, out[0]);
            s.close();
            store.close();                            // every slab returned to the OS
            assertThrows(ClosedException.class, () -> att.decode(s, 0, q, out));
            assertThrows(ClosedException.class, () -> s.readKeys(0, 0, new float[4096 * 128]));
            assertThrows(ClosedException.class, () -> att.prefill(s, 0, q, 1, out));
        }
    }

    @Test
    void decodeAfterSequenceCloseIsAClosedExceptionAndTheStoreIsUntouched() {
        try (KvStore store = KvStore.open(LAYOUT); Attention att = Attention.create(1)) {
            Sequence s = store.newSequence();
            Sequence other = store.newSequence();
            fill(s, 0, 100, 1f);
            fill(other, 0, 100, 2f);
            s.close();
            float[] q = new float[8 * 128];
            float[] out = new float[q.length];
            assertThrows(ClosedException.class, () -> att.decode(s, 0, q, out));
            att.decode(other, 0, q, out);
            assertEquals(2f, out[0], "the other sequence reads its own rows");
            other.close();
            assertEquals(0, store.stats().liveBlocks());
        }
    }

    @Test
    void decodeOnAStoreClosedWhileHoldingLeakedSequencesIsTyped() {
        KvStore store = KvStore.open(LAYOUT);
        Sequence s = store.newSequence();
        fill(s, 0, 64, 1f);
        assertThrows(io.kvslab.LeakedBlocksException.class, store::close);   // frees s's blocks anyway
        try (Attention att = Attention.create(1)) {
            assertThrows(ClosedException.class, () -> att.decode(s, 0, new float[8 * 128], new float[8 * 128]));
        }
        s.close();   // idempotent no-op after the store closed
    }

    // ---- D: exclusive operations on a thread that holds shared access fail at once

    @Test
    void storeCloseInsideReadAccessThrowsInsteadOfHanging() {
        KvStore store = KvStore.open(LAYOUT);
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            try (KvStore.ReadAccess r = store.readAccess()) {
                KvSlabException e = assertThrows(KvSlabException.class, store::close);
                assertTrue(e.getMessage().contains("readAccess"), e.getMessage());
                assertThrows(KvSlabException.class, store::compact);
            }
        });
        assertFalse(store.isClosed(), "the refused close changed nothing");
        store.close();                               // and it works afterwards
        assertTrue(store.isClosed());
    }

    @Test
    void storeCloseInsideAPressureHandlerFailsTheAllocationWithATypedError() {
        KvLayout layout = new KvLayout(1, 8, 8, 128, DType.F32, 32);
        KvStore store = KvStore.open(layout, new StoreConfig(1L << 20, 1L << 20));
        Sequence s = store.newSequence();
        fill(s, 0, 8, 1f);
        store.addPressureHandler(p -> {
            store.close();
            return true;
        });
        Sequence t = store.newSequence();
        MemoryLimitExceededException e = assertTimeoutPreemptively(HANG_GUARD, () ->
                assertThrows(MemoryLimitExceededException.class, () -> fill(t, 0, 10_000, 1f)));
        assertEquals(1, e.getSuppressed().length);
        assertInstanceOf(KvSlabException.class, e.getSuppressed()[0]);
        assertTrue(e.getSuppressed()[0].getMessage().contains("pressure handler"), e.getSuppressed()[0].getMessage());
        assertFalse(store.isClosed());
        s.close();
        t.close();
        store.close();
    }

    @Test
    void mutatingASequenceWhileThisThreadReadsItThrowsInsteadOfSelfDeadlocking() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            fill(s, 0, 40, 1f);
            assertTimeoutPreemptively(HANG_GUARD, () -> TableAccess.of(s).underReadLock(() -> {
                assertThrows(KvSlabException.class, s::close);
                assertThrows(KvSlabException.class, () -> s.keep(0, 0, new int[0]));
                assertThrows(KvSlabException.class, () -> s.removePositions(0, 5));
                assertThrows(KvSlabException.class, store::close);
                return null;
            }));
            assertEquals(40, s.length(0, 0), "nothing changed");
        }
    }

    @Test
    void aThreadHoldingOneSequenceLockNeverWaitsForAnother() throws Exception {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s1 = store.newSequence();
             Sequence s2 = store.newSequence()) {
            fill(s1, 0, 40, 1f);
            fill(s2, 0, 40, 2f);
            CountDownLatch reading = new CountDownLatch(1);
            CountDownLatch done = new CountDownLatch(1);
            Thread other = new Thread(() -> TableAccess.of(s2).underReadLock(() -> {   // another thread reads s2
                reading.countDown();
                try {
                    done.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return null;
            }));
            other.start();
            reading.await();
            // the mirror image (the other thread waiting for s1 while reading s2) would deadlock: fail instead
            assertTimeoutPreemptively(HANG_GUARD, () -> TableAccess.of(s1).underReadLock(() -> {
                assertThrows(io.kvslab.ConcurrentUseException.class, s2::close);
                assertThrows(io.kvslab.ConcurrentUseException.class, () -> s2.keep(0, 0, new int[0]));
                return null;
            }));
            done.countDown();
            other.join();
            assertEquals(40, s2.length(0, 0), "nothing changed");
            TableAccess.of(s1).underReadLock(() -> {   // with s2 idle, the try-lock succeeds
                s2.keep(0, 0, new int[] {0});
                return null;
            });
            assertEquals(1, s2.length(0, 0));
        }
    }

    @Test
    void closeAndCompactFromAnotherThreadWaitForARunningDecodeThenProceed() throws Exception {
        KvStore store = KvStore.open(LAYOUT);
        Sequence s = store.newSequence();
        fill(s, 0, 8192, 0.5f);
        AtomicReference<Throwable> readerEnd = new AtomicReference<>();
        CountDownLatch started = new CountDownLatch(1);
        Thread reader = new Thread(() -> {
            float[] q = new float[8 * 128];
            float[] out = new float[q.length];
            try (Attention att = Attention.create(1)) {
                while (true) {
                    att.decode(s, 0, q, out);
                    if (out[0] != 0.5f) {
                        throw new AssertionError("decode read " + out[0]);
                    }
                    started.countDown();
                }
            } catch (Throwable t) {
                readerEnd.set(t);
            }
        });
        reader.start();
        assertTimeoutPreemptively(HANG_GUARD, () -> {
            started.await();
            assertNotNull(store.compact());
            s.close();
            store.close();
            reader.join();
        });
        assertInstanceOf(ClosedException.class, readerEnd.get(), String.valueOf(readerEnd.get()));
    }

    // ---- J: concurrent double close of a forked sequence

    @Test
    void twoThreadsClosingOneSequenceLeaveItsForkIntact() throws Exception {
        KvLayout layout = new KvLayout(4, 8, 8, 64, DType.F16, 16);
        for (int trial = 0; trial < 200; trial++) {
            try (KvStore store = KvStore.open(layout)) {
                Sequence p = store.newSequence();
                for (int l = 0; l < 4; l++) {
                    fill(p, l, 64, 0.5f);
                }
                Sequence c = p.fork();
                java.util.concurrent.CyclicBarrier go = new java.util.concurrent.CyclicBarrier(2);
                Runnable closer = () -> {
                    try {
                        go.await();
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                    p.close();
                };
                Thread a = new Thread(closer);
                Thread b = new Thread(closer);
                a.start();
                b.start();
                a.join();
                b.join();
                float[] k = new float[64 * 64];
                for (int l = 0; l < 4; l++) {
                    for (int h = 0; h < 8; h++) {
                        c.readKeys(l, h, k);
                        assertEquals(0.5f, k[k.length - 1]);
                    }
                }
                c.close();
                assertEquals(0, store.stats().liveBlocks());
            }
        }
    }

    static float[] decode(Sequence s, int layer, float[] q) {
        float[] out = new float[q.length];
        try (Attention att = Attention.create(1)) {
            att.decode(s, layer, q, out);
        }
        return out;
    }

    @Test
    void decodeIsBitReproducibleForTheOracle() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            java.util.Random rnd = new java.util.Random(5);
            float[] kv = new float[8 * 128];
            for (int t = 0; t < 300; t++) {
                for (int i = 0; i < kv.length; i++) {
                    kv[i] = rnd.nextFloat() - 0.5f;
                }
                s.append(0, kv, kv, t);
            }
            float[] q = new float[8 * 128];
            for (int i = 0; i < q.length; i++) {
                q[i] = rnd.nextFloat();
            }
            assertArrayEquals(decode(s, 0, q), decode(s, 0, q));
        }
    }
}
