package io.kvslab.tier;

import io.kvslab.KvArgumentException;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.kvslab.tier.PrefixTierTest.LAYOUT;
import static io.kvslab.tier.PrefixTierTest.MODEL;
import static io.kvslab.tier.PrefixTierTest.TPB;
import static io.kvslab.tier.PrefixTierTest.assertHolds;
import static io.kvslab.tier.PrefixTierTest.prompt;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Redis tier on a real 3-master Redis Cluster ({@link RedisCluster}: three redis-server processes in cluster
 * mode on loopback ports), reached through {@code redis-cluster://} seeds: two replicas share a prompt's blocks
 * through the cluster, the blocks spread over the masters by hash slot, and with one master paused (SIGSTOP: a
 * stalled node that accepts connections and answers nothing) lookups and publishes still return within the
 * timeout, the failed calls counted, the blocks on the other masters still served.
 */
class RedisClusterTierTest {
    private static RedisCluster cluster;
    private static RedisTier tier;
    private static RedisTier other;

    @BeforeAll
    static void start() {
        cluster = RedisCluster.start(3);
        RedisTierConfig config = RedisTierConfig.of(cluster.uri()).withTimeout(Duration.ofSeconds(2));
        tier = openWarm(config);
        other = openWarm(config);
    }

    /** A tier that has done a put, get, batch and remove on every master (cold JVM, slot map learnt). */
    static RedisTier openWarm(RedisTierConfig config) {
        RedisTier t = RedisTier.connect(config);
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        List<BlockKey> warm = new ArrayList<>();
        Set<Integer> ports = new HashSet<>();
        for (long i = 1; ports.size() < cluster.nodes().size(); i++) {
            BlockKey k = new BlockKey(-1, -i);
            if (ports.add(cluster.nodeOf(t.redisKey(k)).port())) {
                warm.add(k);
            }
        }
        while (!works(t, warm)) {
            if (System.nanoTime() > deadline) {
                t.close();
                throw new AssertionError("the cluster tier did not work within 60 s on " + cluster.uri() + ": "
                        + t.stats());
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        return t;
    }

    private static boolean works(RedisTier t, List<BlockKey> keys) {
        for (BlockKey k : keys) {
            if (!t.put(k, new byte[] {1})) {
                return false;
            }
        }
        List<java.util.Optional<byte[]>> got = t.getAll(keys);
        boolean ok = got.stream().allMatch(java.util.Optional::isPresent);
        for (BlockKey k : keys) {
            ok &= t.remove(k);
        }
        return ok;
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : new AutoCloseable[] {tier, other, cluster}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
    }

    @BeforeEach
    void flush() {
        for (RedisServer r : cluster.nodes()) {
            r.resume();
        }
        cluster.flushAll();
    }

    @Test
    void clusterUrisAreCheckedAndBadOnesNamed() {
        assertEquals(List.of("redis://a:1", "redis://b:7002"),
                RedisTierConfig.clusterSeeds("redis-cluster://a:1,b:7002"));
        assertEquals(List.of("redis://h:7000"), RedisTierConfig.clusterSeeds("redis-cluster://h:7000/"));
        assertEquals(null, RedisTierConfig.clusterSeeds("redis://h:7000"));
        for (String bad : new String[] {"redis-cluster://", "redis-cluster://h", "redis-cluster://h:0",
                "redis-cluster://h:70000", "redis-cluster://a:1,", "redis-cluster://:7000", "redis-cluster://u@h:1",
                "redis-cluster://h:x", "redis-clusterx://h:1"}) {
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> RedisTierConfig.of(bad), bad);
            assertTrue(e.getMessage().contains("redis"), e.getMessage());
        }
    }

    /** Two replicas share a prompt through the cluster; its blocks lie on every master, each exactly once. */
    @Test
    void twoReplicasShareAPromptWhoseBlocksSpreadOverEveryMaster() throws Exception {
        int[] tokens = prompt(24 * TPB + 2, 21);
        try (PrefixTierTest.Replica a = PrefixTierTest.Replica.open(LAYOUT, MODEL, tier, 256);
             PrefixTierTest.Replica b = PrefixTierTest.Replica.open(LAYOUT, MODEL, other, 256)) {
            a.serve(tokens);
            assertEquals(24, a.prefix().stats().publishedBlocks());
            List<String> expected = new ArrayList<>();
            for (BlockKey k : a.prefix().blockKeys(tokens)) {
                expected.add(tier.redisKey(k));
            }
            List<List<String>> perNode = cluster.keysPerNode(RedisTierConfig.DEFAULT_PREFIX + "*");
            List<String> all = new ArrayList<>();
            for (int n = 0; n < perNode.size(); n++) {
                assertFalse(perNode.get(n).isEmpty(), "master " + n + " holds none of the 24 blocks: " + perNode);
                for (String key : perNode.get(n)) {
                    assertEquals(cluster.nodes().get(n).port(), cluster.nodeOf(key).port(),
                            key + " lies on the master of its slot");
                }
                all.addAll(perNode.get(n));
            }
            assertEquals(new HashSet<>(expected), new HashSet<>(all));
            assertEquals(expected.size(), all.size(), "each block stored once");

            PrefixMatch m = b.prefix().lookup(tokens);
            try (Sequence s = m.sequence()) {
                assertEquals(24 * TPB, m.matchedTokens());
                assertHolds(s, tokens, 24 * TPB);
            }
            assertEquals(24, b.prefix().stats().fetchedBlocks());
            assertEquals(0, b.prefix().stats().rejectedBlocks());
        }
    }

    /**
     * One master paused (SIGSTOP: it accepts connections and answers nothing): a replica's
     * lookup of a prompt with blocks on it returns (within the tier's timeout, here under a 60 s guard) the local
     * match and the failed gets are counted; single blocks on the other masters are still served; a publish of a
     * new prompt stores the blocks of the healthy masters and counts the others as failed, never blocking the
     * caller; after the pause the prompt is fetched whole again.
     */
    @Test
    void onePausedMasterCostsItsBlocksOnlyAndEveryCallReturnsWithinTheTimeout() throws Exception {
        int[] tokens = prompt(12 * TPB + 1, 22);
        int[] fresh = prompt(12 * TPB + 1, 23);
        try (PrefixTierTest.Replica a = PrefixTierTest.Replica.open(LAYOUT, MODEL, tier, 256);
             PrefixTierTest.Replica b = PrefixTierTest.Replica.open(LAYOUT, MODEL, other, 256)) {
            a.serve(tokens);
            List<BlockKey> keys = a.prefix().blockKeys(tokens);
            RedisServer paused = cluster.nodeOf(tier.redisKey(keys.get(0)));
            List<BlockKey> elsewhere = new ArrayList<>();
            for (BlockKey k : keys) {
                if (cluster.nodeOf(tier.redisKey(k)).port() != paused.port()) {
                    elsewhere.add(k);
                }
            }
            assertFalse(elsewhere.isEmpty(), "some blocks lie on the other masters");
            paused.pause();
            try {
                long failedBefore = other.stats().getFailures();
                assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                    PrefixMatch m = b.prefix().lookup(tokens);
                    try (Sequence s = m.sequence()) {
                        assertEquals(0, m.matchedTokens(), "block 0 lies on the paused master: nothing to attach");
                    }
                });
                assertEquals(12, other.stats().getFailures() - failedBefore, "the timed-out batch's gets are counted");
                assertEquals(12, b.prefix().stats().missedBlocks());
                assertEquals(0, b.prefix().stats().fetchedBlocks());

                // the other masters still answer, block by block
                for (BlockKey k : elsewhere) {
                    assertTrue(other.get(k).isPresent(), "block " + k.hex() + " on a healthy master");
                }

                // publishing never waits for the paused master: its blocks fail (counted), the rest are stored
                int onPaused = 0;
                for (BlockKey k : a.prefix().blockKeys(fresh)) {
                    onPaused += cluster.nodeOf(tier.redisKey(k)).port() == paused.port() ? 1 : 0;
                }
                int expectFailed = onPaused;
                assertTimeoutPreemptively(Duration.ofSeconds(90), () -> {
                    try (Sequence s = b.store().newSequence()) {
                        PrefixTierTest.prefill(s, fresh, 0);
                        assertEquals(12, b.prefix().publish(s, fresh), "queued without waiting");
                        assertTrue(b.prefix().flush(80_000));
                    }
                });
                assertEquals(12 - expectFailed, b.prefix().stats().publishedBlocks());
                assertEquals(expectFailed, b.prefix().stats().publishFailures());
            } finally {
                paused.resume();
            }
            try (PrefixTierTest.Replica c = PrefixTierTest.Replica.open(LAYOUT, MODEL, other, 16)) {
                PrefixMatch again = c.prefix().lookup(tokens);
                try (Sequence s = again.sequence()) {
                    assertEquals(12 * TPB, again.matchedTokens(), "after the pause the prompt is fetched whole");
                    assertHolds(s, tokens, 12 * TPB);
                }
            }
        }
    }
}
