package io.kvslab.tier;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real Redis that dies, restarts, pauses or fills up: every tier call still returns (a miss or {@code false},
 * counted), and the tier works again once the server does. The timeouts in {@code assertTimeoutPreemptively} are
 * liveness bounds (a hung call would fail the test instead of stalling the build), 25x or more the tier's own
 * timeout, not performance assertions.
 */
class RedisTierFaultTest {
    private static final Duration TIMEOUT = Duration.ofMillis(200);
    private static final Duration LIVENESS = Duration.ofSeconds(20);

    /** A tier with a short timeout, warmed up (its first calls load classes) when the server is up. */
    private static RedisTier open(RedisServer r) {
        RedisTierConfig c = RedisTierConfig.of(r.uri()).withTimeout(TIMEOUT);
        return r.alive() ? r.openWarm(c) : RedisTier.connect(c);
    }

    /** Counters after the warm-up, to subtract. */
    private static TierStats base(RedisTier t) {
        return t.stats();
    }

    /** Polls {@code condition} for up to 60 s (reconnects take Lettuce's backoff). */
    private static boolean eventually(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    @Test
    void removingManyRecordsFromAPausedServerCostsOneTimeoutNotOnePerRecord() throws Exception {
        try (RedisServer redis = RedisServer.start(); RedisTier tier = open(redis)) {
            byte[] v = RedisTierTest.bytes(1024, 3);
            List<BlockKey> keys = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                keys.add(new BlockKey(31, i));
                assertTrue(tier.put(keys.get(i), v));
            }
            redis.pause();
            try {
                // one removal at a time would wait 500 x 200 ms: beyond the liveness bound
                assertTimeoutPreemptively(LIVENESS, () -> assertEquals(0, tier.removeAll(keys)));
            } finally {
                redis.resume();
            }
            assertTrue(eventually(() -> {
                tier.removeAll(keys);
                return redis.keys("*").isEmpty();
            }), "a batch after the pause removes every record: " + redis.keys("*").size() + " left");
        }
    }

    @Test
    void batchesLargerThanTheClientsRequestQueueAreFetchedAndRemovedWhole() {
        try (RedisServer redis = RedisServer.start(); RedisTier tier = open(redis)) {
            List<BlockKey> keys = new ArrayList<>();
            for (int i = 0; i < 5000; i++) {   // Lettuce refuses a batch beyond its 4,096-request queue
                keys.add(new BlockKey(32, i));
                assertTrue(tier.put(keys.get(i), RedisTierTest.bytes(64, i)));
            }
            List<Optional<byte[]>> got = tier.getAll(keys);
            assertEquals(5000, got.size());
            for (int i = 0; i < 5000; i++) {
                assertArrayEquals(RedisTierTest.bytes(64, i), got.get(i).orElseThrow(), "key " + i);
            }
            assertEquals(5000, tier.removeAll(keys));
            assertEquals(List.of(), redis.keys("*"));
        }
    }

    @Test
    void killedMidRunCallsFailFastAndTheTierComesBackAfterARestart() throws Exception {
        try (RedisServer redis = RedisServer.start(); RedisTier tier = open(redis)) {
            byte[] v = RedisTierTest.bytes(64 << 10, 1);
            TierStats before = base(tier);
            assertTimeoutPreemptively(LIVENESS.multipliedBy(3), () -> {
                int stored = 0;
                int failed = 0;
                for (int i = 0; i < 200; i++) {
                    if (i == 100) {
                        redis.kill();
                    }
                    if (tier.put(new BlockKey(7, i), v)) {
                        stored++;
                    } else {
                        failed++;
                    }
                    tier.get(new BlockKey(7, i / 2));   // never throws, whatever the server's state
                }
                assertEquals(100, stored, "puts before the kill all landed");
                assertEquals(100, failed, "puts after the kill all failed");
            });
            TierStats s = tier.stats();
            assertEquals(100, s.putFailures() - before.putFailures());
            assertTrue(s.getFailures() - before.getFailures() >= 99, "gets after the kill counted as failures: " + s);
            redis.restart();   // empty: persistence is off
            assertTrue(eventually(() -> tier.put(new BlockKey(8, 8), v)), "the tier reconnects after a restart");
            assertArrayEquals(v, tier.get(new BlockKey(8, 8)).orElseThrow());
            assertTrue(tier.get(new BlockKey(7, 0)).isEmpty(), "what the dead server held is gone: a miss");
        }
    }

    @Test
    void aServerDownAtOpenGivesADisconnectedTierThatConnectsLater() throws Exception {
        try (RedisServer redis = RedisServer.start()) {
            redis.kill();
            RedisTier tier = assertTimeoutPreemptively(LIVENESS, () -> open(redis));
            try (tier) {
                assertFalse(tier.connected());
                assertTimeoutPreemptively(LIVENESS, () -> {
                    assertTrue(tier.get(new BlockKey(1, 1)).isEmpty());
                    assertFalse(tier.put(new BlockKey(1, 1), new byte[] {1}));
                });
                redis.restart();
                assertTrue(eventually(() -> tier.put(new BlockKey(1, 1), new byte[] {1})));
                assertTrue(tier.connected());
                assertArrayEquals(new byte[] {1}, tier.get(new BlockKey(1, 1)).orElseThrow());
            }
        }
    }

    @Test
    void aPausedServerTimesCallsOutAndServesAgainAfterUnpause() throws Exception {
        try (RedisServer redis = RedisServer.start(); RedisTier tier = open(redis)) {
            BlockKey k = new BlockKey(3, 3);
            assertTrue(tier.put(k, new byte[] {3}));
            TierStats before = base(tier);
            // 5 s, 25x the tier's timeout; a paused Redis 7 answers no one (CLIENT UNPAUSE included), so it runs out
            redis.command("CLIENT", "PAUSE", "5000", "ALL");
            assertTimeoutPreemptively(LIVENESS, () -> {
                assertTrue(tier.get(k).isEmpty(), "a paused server is a miss, not a wait");
                assertFalse(tier.put(new BlockKey(4, 4), new byte[] {4}));
                assertTrue(tier.getAll(java.util.List.of(k, new BlockKey(4, 4))).stream().allMatch(o -> o.isEmpty()));
            });
            TierStats s = tier.stats();
            assertEquals(1, s.putFailures() - before.putFailures());
            assertEquals(3, s.getFailures() - before.getFailures());
            assertTrue(eventually(() -> tier.get(k).isPresent()), "served again once the pause ends");
            assertArrayEquals(new byte[] {3}, tier.get(k).orElseThrow());
        }
    }

    @Test
    void aFullServerWithoutEvictionRefusesPutsAndKeepsServingGets() throws Exception {
        try (RedisServer redis = RedisServer.start("--maxmemory", "4mb", "--maxmemory-policy", "noeviction");
             RedisTier tier = open(redis)) {
            byte[] v = RedisTierTest.bytes(256 << 10, 2);
            int stored = 0;
            int refused = 0;
            for (int i = 0; i < 64 && refused < 3; i++) {
                if (tier.put(new BlockKey(9, i), v)) {
                    stored++;
                } else {
                    refused++;
                }
            }
            assertTrue(stored > 0 && refused == 3, "stored " + stored + ", refused " + refused);
            assertEquals(3, tier.stats().putFailures(), "refusals counted (the warm-up put fitted)");
            assertArrayEquals(v, tier.get(new BlockKey(9, 0)).orElseThrow(), "what fitted is still served");
        }
    }

    @Test
    void aFullServerWithAllKeysLruEvictsOldBlocksAndPutsKeepLanding() throws Exception {
        try (RedisServer redis = RedisServer.start("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru");
             RedisTier tier = open(redis)) {
            byte[] v = RedisTierTest.bytes(256 << 10, 3);
            for (int i = 0; i < 64; i++) {
                assertTrue(tier.put(new BlockKey(10, i), v), "put " + i);
            }
            assertEquals(0, tier.stats().putFailures());
            long held = (Long) redis.command("DBSIZE");
            assertTrue(held < 64, "Redis evicted some blocks (" + held + " of 64 held)");
            assertTrue(tier.get(new BlockKey(10, 0)).isEmpty(), "the oldest block was evicted: a miss");
            assertArrayEquals(v, tier.get(new BlockKey(10, 63)).orElseThrow(), "the newest is served");
        }
    }
}
