package io.kvslab.tier;

import io.kvslab.ClosedException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link RedisTier} against a real redis-server on a free loopback port: binary values byte for byte, misses,
 * pipelined batches, TTL, counters. The fault tests live in {@link RedisTierFaultTest}.
 */
class RedisTierTest {
    private static RedisServer redis;
    private static RedisTier tier;

    @BeforeAll
    static void start() {
        redis = RedisServer.start();
        // a generous timeout: these tests check values, not faults (a cold JVM's first calls load Netty's classes)
        tier = redis.openWarm(RedisTierConfig.of(redis.uri()).withKeyPrefix("t:").withTimeout(Duration.ofSeconds(5)));
    }

    @AfterAll
    static void stop() {
        if (tier != null) {
            tier.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    @BeforeEach
    void flush() {
        redis.command("FLUSHALL");
    }

    static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new SplittableRandom(seed).nextBytes(b);
        return b;
    }

    @Test
    void binaryValuesRoundTripByteForByteUnderTheirHexKey() {
        byte[] every = new byte[256];
        for (int i = 0; i < 256; i++) {
            every[i] = (byte) i;   // CR, LF, NUL and high bytes: a text codec would mangle them
        }
        byte[] big = bytes(2 << 20, 7);   // one Llama-3-8B record of 16 tokens
        TierStats before = tier.stats();
        BlockKey a = new BlockKey(0x0123456789abcdefL, -1L);
        BlockKey b = new BlockKey(-2L, 42L);
        assertTrue(tier.put(a, every));
        assertTrue(tier.put(b, big));
        assertArrayEquals(every, tier.get(a).orElseThrow());
        assertArrayEquals(big, tier.get(b).orElseThrow());
        // stored exactly where the docs say: prefix + 32 hex digits, raw bytes (read back without Lettuce)
        assertEquals("t:0123456789abcdefffffffffffffffff", tier.redisKey(a));
        assertArrayEquals(every, redis.get("t:0123456789abcdefffffffffffffffff"));
        assertEquals(List.of("t:" + b.hex()), redis.keys("t:ff*"));
        TierStats s = tier.stats();
        assertEquals(2, s.puts() - before.puts());
        assertEquals(2, s.hits() - before.hits());
        assertEquals(256L + big.length, s.bytesWritten() - before.bytesWritten());
        assertEquals(256L + big.length, s.bytesRead() - before.bytesRead());
        assertEquals(0, s.putFailures() + s.getFailures());
    }

    @Test
    void absentKeysMissAndRemoveSaysWhetherThereWasAValue() {
        long misses = tier.stats().misses();
        BlockKey k = new BlockKey(1, 2);
        assertEquals(Optional.empty(), tier.get(k));
        assertEquals(misses + 1, tier.stats().misses());
        assertFalse(tier.remove(k));
        assertTrue(tier.put(k, new byte[] {1}));
        assertTrue(tier.remove(k));
        assertEquals(Optional.empty(), tier.get(k));
        assertEquals(null, redis.get(tier.redisKey(k)));
    }

    @Test
    void getAllReturnsValuesInOrderWithMissesInPlace() {
        BlockKey[] keys = new BlockKey[50];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = new BlockKey(i, i * 31L);
            if (i % 3 != 0) {
                assertTrue(tier.put(keys[i], bytes(1000 + i, i)));
            }
        }
        List<Optional<byte[]>> got = tier.getAll(Arrays.asList(keys));
        assertEquals(keys.length, got.size());
        for (int i = 0; i < keys.length; i++) {
            if (i % 3 == 0) {
                assertTrue(got.get(i).isEmpty(), "key " + i);
            } else {
                assertArrayEquals(bytes(1000 + i, i), got.get(i).orElseThrow(), "key " + i);
            }
        }
        assertEquals(List.of(), tier.getAll(List.of()));
    }

    @Test
    void aTtlIsSetOnEveryValueAndNoneWithout() {
        BlockKey k = new BlockKey(5, 5);
        assertTrue(tier.put(k, new byte[] {9}));
        assertEquals(-1L, redis.command("PTTL", tier.redisKey(k)), "no TTL configured: no expiry");
        try (RedisTier ttl = RedisTier.connect(RedisTierConfig.of(redis.uri()).withKeyPrefix("t:")
                .withTimeout(Duration.ofSeconds(5)).withTtl(Duration.ofMinutes(10)))) {
            assertTrue(ttl.put(k, new byte[] {9}));
            long pttl = (Long) redis.command("PTTL", ttl.redisKey(k));
            assertTrue(pttl > 0 && pttl <= 600_000, "PTTL " + pttl);
        }
    }

    @Test
    void callerMistakesThrowTypedExceptions() {
        assertThrows(KvArgumentException.class, () -> tier.put(null, new byte[1]));
        assertThrows(KvArgumentException.class, () -> tier.put(new BlockKey(0, 0), null));
        assertThrows(KvArgumentException.class, () -> tier.get(null));
        assertThrows(KvArgumentException.class, () -> RedisTier.connect(null));
        assertThrows(KvArgumentException.class, () -> RedisTierConfig.of("http://localhost:6379"));
        assertThrows(KvArgumentException.class, () -> RedisTierConfig.of("redis://"));
        assertThrows(KvArgumentException.class, () -> RedisTierConfig.of(redis.uri()).withTimeout(Duration.ZERO));
        assertThrows(KvArgumentException.class, () -> RedisTierConfig.of(redis.uri()).withTtl(Duration.ofSeconds(-1)));
        RedisTier t = RedisTier.connect(RedisTierConfig.of(redis.uri()));
        t.close();
        t.close();   // idempotent
        assertThrows(ClosedException.class, () -> t.get(new BlockKey(0, 0)));
        assertThrows(ClosedException.class, () -> t.put(new BlockKey(0, 0), new byte[1]));
    }

    @Test
    void withoutLettuceOnTheClassPathConnectNamesTheJar() throws Exception {
        String cp = ForkedJvm.classPathWithout(e -> e.contains("lettuce"));
        ForkedJvm.Result r = ForkedJvm.runWithClassPath(RedisTierProbe.class, 120, List.of(), cp, redis.uri());
        assertTrue(r.clean(), r.describe());
        assertTrue(r.stdout().contains("THROWN " + KvSlabException.class.getName()), r.describe());
        assertTrue(r.stdout().contains("the Redis tier needs Lettuce"), r.describe());
        assertTrue(r.stdout().contains("io.lettuce:lettuce-core"), r.describe());
        // and with it, the same probe opens the tier (the check is not always failing)
        r = ForkedJvm.run(RedisTierProbe.class, 120, List.of(), redis.uri());
        assertTrue(r.stdout().contains("OPENED"), r.describe());
    }

    @Test
    void manyThreadsShareOneTierWithoutMixingValues() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Thread[] ts = new Thread[8];
            Throwable[] failure = new Throwable[1];
            for (int t = 0; t < ts.length; t++) {
                int id = t;
                ts[t] = Thread.ofPlatform().start(() -> {
                    try {
                        for (int i = 0; i < 100; i++) {
                            BlockKey k = new BlockKey(id, i);
                            byte[] v = bytes(100 + i, id * 1000L + i);
                            assertTrue(tier.put(k, v));
                            assertArrayEquals(v, tier.get(k).orElseThrow());
                        }
                    } catch (Throwable e) {
                        synchronized (failure) {
                            failure[0] = e;
                        }
                    }
                });
            }
            for (Thread t : ts) {
                t.join();
            }
            if (failure[0] != null) {
                throw new AssertionError(failure[0]);
            }
        });
    }
}
