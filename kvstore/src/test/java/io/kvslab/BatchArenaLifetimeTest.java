package io.kvslab;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;

import static io.kvslab.SequenceAttentionTest.fill;
import static io.kvslab.SequenceAttentionTest.random;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The caller's q and out stay alive for the whole native batched call: another thread's close() of their shared
 * arena does not get through until the call has returned (the kernel reads q and writes out until then). Until the
 * batch passed them to the kernel as arguments (ABI 10) they rode in its descriptors only, and such a close went
 * through while the kernel still used the memory. Native path only (not in the java-fallback execution: the Java
 * kernel's accesses are checked one by one, so there a close may land mid-call and the call fails cleanly).
 */
class BatchArenaLifetimeTest {
    @Test
    @Timeout(120)
    void theCallersArenaCannotCloseDuringABatchedCall() throws Exception {
        KvLayout layout = new KvLayout(1, 8, 2, 64, DType.F32, 32);
        Random rnd = new Random(9);
        int rows = 48;
        int width = 8 * 64;
        try (KvStore store = KvStore.open(layout); Attention att = Attention.create(1);
             Sequence s = store.newSequence()) {
            fill(s, rnd, 16_384);
            // one long call: 48 rows over the same 16k-token sequence (16 MiB of K and V) on one thread
            List<Sequence> batch = Collections.nCopies(rows, s);
            // warm the Java side up (its checks run before the kernel, and a close that lands there fails the call
            // cleanly), then aim the close at a third of a call's time
            long callNanos;
            try (Arena warm = Arena.ofConfined()) {
                MemorySegment q = warm.allocateFrom(ValueLayout.JAVA_FLOAT, random(rnd, rows * width, 1f));
                MemorySegment out = warm.allocate(ValueLayout.JAVA_FLOAT, (long) rows * width);
                for (int i = 0; i < 30; i++) {
                    att.decodeBatch(0, batch, q, out);
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < 5; i++) {
                    att.decodeBatch(0, batch, q, out);
                }
                callNanos = (System.nanoTime() - t0) / 5;
            }
            long delayNanos = callNanos / 3;
            for (int attempt = 1; ; attempt++) {
                Arena shared = Arena.ofShared();
                MemorySegment q = shared.allocateFrom(ValueLayout.JAVA_FLOAT, random(rnd, rows * width, 1f));
                MemorySegment out = shared.allocate(ValueLayout.JAVA_FLOAT, (long) rows * width);
                CountDownLatch calling = new CountDownLatch(1);
                long[] closedAt = new long[1];
                int[] refused = new int[1];
                Thread closer = new Thread(() -> {
                    try {
                        calling.await();
                        Thread.sleep(delayNanos / 1_000_000, (int) (delayNanos % 1_000_000)); // into the kernel
                    } catch (InterruptedException ie) {
                        return;
                    }
                    while (true) {
                        try {
                            shared.close();
                            closedAt[0] = System.nanoTime();
                            return;
                        } catch (IllegalStateException busy) {
                            refused[0]++;
                            Thread.onSpinWait();
                        }
                    }
                });
                closer.start();
                calling.countDown();
                long returned;
                boolean ran;
                try {
                    att.decodeBatch(0, batch, q, out);
                    ran = true;
                } catch (IllegalStateException | KvArgumentException closedFirst) {
                    ran = false; // the close came before the call took its segments: no overlap, try again
                }
                returned = System.nanoTime();
                closer.join();
                if (ran) {
                    // the close may get through as soon as the native call has released the arena, a moment before
                    // decodeBatch returns; without the fix it got through a third into the call, two thirds of a
                    // call's time before the return
                    assertTrue(closedAt[0] >= returned - callNanos / 4, "the caller's arena closed "
                            + (returned - closedAt[0]) / 1000 + " us before the batched call returned (a call takes "
                            + callNanos / 1000 + " us)");
                }
                if ((ran && refused[0] > 0) || attempt == 5) {
                    assertTrue(ran && refused[0] > 0, "no close attempt overlapped the call in 5 attempts");
                    return;
                }
            }
        }
    }
}
