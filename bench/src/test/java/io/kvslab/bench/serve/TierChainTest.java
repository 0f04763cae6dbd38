package io.kvslab.bench.serve;

import io.kvslab.tier.BlockKey;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.RedisServer;
import io.kvslab.tier.RedisTier;
import io.kvslab.tier.RedisTierConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The disk in front of a real Redis: writes reach both, reads prefer the disk and copy Redis-only blocks to it. */
class TierChainTest {
    @Test
    void readsPreferTheDiskAndPromoteWhatOnlyRedisHad(@TempDir Path dir) {
        try (RedisServer redis = RedisServer.start();
             RedisTier far = redis.openWarm(RedisTierConfig.of(redis.uri()).withTimeout(Duration.ofSeconds(5)));
             DiskTier near = DiskTier.open(dir, 1 << 20);
             TierChain chain = new TierChain(near, far)) {
            BlockKey a = new BlockKey(1, 1);
            BlockKey b = new BlockKey(2, 2);
            assertTrue(chain.put(a, new byte[] {1, 2, 3}));
            assertArrayEquals(new byte[] {1, 2, 3}, near.get(a).orElseThrow(), "written to the disk");
            assertArrayEquals(new byte[] {1, 2, 3}, far.get(a).orElseThrow(), "and to Redis");
            assertTrue(far.put(b, new byte[] {4}));   // another replica published b: only Redis has it
            long farHits = far.stats().hits();
            var got = chain.getAll(List.of(a, b, new BlockKey(3, 3)));
            assertArrayEquals(new byte[] {1, 2, 3}, got.get(0).orElseThrow());
            assertArrayEquals(new byte[] {4}, got.get(1).orElseThrow());
            assertTrue(got.get(2).isEmpty());
            assertEquals(farHits + 1, far.stats().hits(), "only b was read from Redis");
            assertArrayEquals(new byte[] {4}, near.get(b).orElseThrow(), "b promoted to the disk");
            redis.kill();
            assertArrayEquals(new byte[] {4}, chain.get(b).orElseThrow(), "served from the disk with Redis gone");
        }
    }
}
