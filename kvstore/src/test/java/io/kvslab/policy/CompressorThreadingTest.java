package io.kvslab.policy;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A {@link Compressor} runs one call at a time, on whatever thread (a pool's workers take turns with one), and is
 * used after close only to fail typed. Its scratch used to be confined to the first thread that needed it: a second
 * worker got a raw {@code WrongThreadException}, and a close from there marked it closed without freeing it.
 */
class CompressorThreadingTest {
    private static final Fixtures.Shape SHAPE = new Fixtures.Shape(2, 4, 2, 8, 16);
    private static final int N = 96;
    private static final int W = 8;

    @Test
    void workersTakingTurnsWithOneCompressorGetTheSameSelectionAsOneThread() throws Exception {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 11);
        CompressionPolicy snapKv = Policies.snapKv();   // window attention: the kernels' scratch is used
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (KvStore store = KvStore.open(SHAPE.layout(16)); Compressor shared = new Compressor();
             Compressor alone = new Compressor()) {
            Sequence expected = data.fill(store);
            alone.compress(expected, snapKv, Budget.tokens(24), data.inputs());
            for (int round = 0; round < 4; round++) {
                Sequence s = data.fill(store);
                Future<CompressionResult> f = pool.submit(() -> shared.compress(s, snapKv, Budget.tokens(24),
                        data.inputs()));
                assertEquals(24L * SHAPE.layers() * SHAPE.kvHeads(), f.get(1, TimeUnit.MINUTES).keptRows());
                for (int l = 0; l < SHAPE.layers(); l++) {
                    for (int h = 0; h < SHAPE.kvHeads(); h++) {
                        assertArrayEquals(expected.positions(l, h), s.positions(l, h), "round " + round);
                    }
                }
                s.close();
            }
            pool.submit(shared::close).get(1, TimeUnit.MINUTES);   // closed by a worker, not the creator
            Sequence s = data.fill(store);
            ClosedException e = assertThrows(ClosedException.class,
                    () -> shared.compress(s, Policies.knorm(), Budget.tokens(8)));
            assertTrue(e.getMessage().contains("Compressor"), e.getMessage());
            assertEquals(N, s.length(0, 0), "nothing was evicted by the closed compressor");
            shared.close();   // idempotent
            s.close();
            expected.close();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aSecondCallOrACloseDuringACallFailsTypedAndTheRunningCallFinishes() throws Exception {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 12);
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (KvStore store = KvStore.open(SHAPE.layout(16)); Compressor c = new Compressor()) {
            Sequence s = data.fill(store);
            Sequence other = data.fill(store);
            // the inputs function runs inside the call: it holds the call open until the main thread has tried
            Future<CompressionResult> running = pool.submit(() -> c.compress(s, Policies.snapKv(), Budget.tokens(24),
                    layer -> {
                        inside.countDown();
                        await(release);
                        return data.inputs().apply(layer);
                    }));
            assertTrue(inside.await(1, TimeUnit.MINUTES));
            assertThrows(ConcurrentUseException.class, () -> c.compress(other, Policies.knorm(), Budget.tokens(8)));
            assertThrows(ConcurrentUseException.class, c::close);
            release.countDown();
            assertEquals(24L * SHAPE.layers() * SHAPE.kvHeads(), running.get(1, TimeUnit.MINUTES).keptRows());
            assertEquals(N, other.length(0, 0), "the refused call changed nothing");
            s.close();
            other.close();
        } finally {
            pool.shutdownNow();
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
