package io.kvslab;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The documented contract: one writer per sequence, any number of sequences in parallel, forks sharing blocks
 * across threads, and compaction running concurrently (it waits for in-flight operations).
 */
class ConcurrencyTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 6, 3, 8, DType.F32, 4);

    @Test
    void parallelWritersForksAndCompactionKeepEveryRowIntact() throws Exception {
        try (KvStore store = KvStore.open(LAYOUT, StoreConfig.defaults().withSlabBytes(64 * LAYOUT.blockBytes()))) {
            AtomicBoolean stop = new AtomicBoolean();
            ExecutorService pool = Executors.newFixedThreadPool(4);
            Future<Integer> compactor = pool.submit(() -> {
                int n = 0;
                while (!stop.get()) {
                    store.compact();
                    n++;
                    Thread.onSpinWait();
                }
                return n;
            });
            // A shared parent that every worker forks from: its blocks are shared across threads.
            Sequence parent = store.newSequence();
            SequenceTest.fill(parent, 0, 7);
            List<Future<?>> workers = new ArrayList<>();
            for (int w = 0; w < 3; w++) {
                int seed = w;
                workers.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    for (int round = 0; round < 40; round++) {
                        Sequence child = parent.fork();
                        int extra = 1 + rnd.nextInt(9);
                        SequenceTest.fill(child, 7, 7 + extra);
                        int l = rnd.nextInt(2);
                        int h = rnd.nextInt(3);
                        int len = child.length(l, h);
                        int[] keep = rnd.ints(0, len).distinct().limit(1 + rnd.nextInt(len)).sorted().toArray();
                        child.keep(l, h, keep);
                        long[] kept = new long[keep.length];
                        for (int i = 0; i < keep.length; i++) {
                            kept[i] = keep[i];   // positions equal row indices before the retain
                        }
                        SequenceTest.assertHolds(child, l, h, kept);
                        SequenceTest.assertHolds(child, 1 - l, h, SequenceTest.range(0, 7 + extra));
                        child.close();
                    }
                    return null;
                }));
            }
            for (Future<?> f : workers) {
                f.get();
            }
            stop.set(true);
            compactor.get();
            pool.shutdown();
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < 3; h++) {
                    SequenceTest.assertHolds(parent, l, h, SequenceTest.range(0, 7));
                }
            }
            parent.close();
            assertEquals(0, store.stats().liveBytes());
            assertEquals(0, store.stats().openSequences());
        }
    }
}
