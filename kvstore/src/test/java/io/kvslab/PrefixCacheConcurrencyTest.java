package io.kvslab;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Several request threads look up, prefill, insert and close under a tight memory limit (so the cache's pressure
 * handler runs on allocating threads) while another thread compacts: every sequence holds exactly the rows of
 * its tokens, and nothing leaks. The timeout only guards against a lock-order deadlock hanging the build.
 */
class PrefixCacheConcurrencyTest {
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void concurrentRequestsShareAndEvictPrefixesSafely() throws Exception {
        KvLayout layout = PrefixCacheTest.LAYOUT;
        long block = layout.blockBytes();
        // Room for 20 token blocks of 8 K/V blocks; requests have up to 4 token blocks each.
        StoreConfig config = new StoreConfig(160 * block, 16 * block);
        try (KvStore store = KvStore.open(layout, config); PrefixCache cache = PrefixCache.create(store)) {
            AtomicBoolean stop = new AtomicBoolean();
            ExecutorService pool = Executors.newFixedThreadPool(4);
            Future<?> compactor = pool.submit(() -> {
                while (!stop.get()) {
                    store.compact();
                    Thread.onSpinWait();
                }
            });
            List<Future<Integer>> workers = new ArrayList<>();
            for (int w = 0; w < 3; w++) {
                int seed = w;
                workers.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    int hits = 0;
                    for (int i = 0; i < 150; i++) {
                        // Five shared system prompts of 8 tokens, then a private suffix.
                        int[] tokens = new int[8 + rnd.nextInt(9)];
                        int system = rnd.nextInt(5);
                        for (int t = 0; t < tokens.length; t++) {
                            tokens[t] = t < 8 ? system * 100 + t : 10_000 + rnd.nextInt(50);
                        }
                        PrefixMatch m = cache.lookup(tokens, 0);
                        try (Sequence s = m.sequence()) {
                            hits += m.matchedTokens() > 0 ? 1 : 0;
                            PrefixCacheTest.prefill(s, tokens, m.matchedTokens());
                            PrefixCacheTest.assertHoldsTokens(s, tokens);
                            cache.insert(s, tokens, 0);
                        }
                    }
                    return hits;
                }));
            }
            int hits = 0;
            for (Future<Integer> f : workers) {
                hits += f.get();
            }
            stop.set(true);
            compactor.get();
            pool.shutdown();
            assertTrue(hits > 0, "shared system prompts were served from the cache");
            assertEquals(store.metrics().prefixCachedBlocks() * block, store.stats().liveBytes(),
                    "only cached blocks remain live");
        }
    }
}
