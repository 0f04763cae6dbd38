package io.kvslab.tier;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.RopeRotation;
import io.kvslab.Sequence;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix blocks shared through a real Redis between two stores (two "replicas"): what one publishes the other
 * fetches bit for bit; only blocks identical to a fresh prefill are published; any value that fails a check
 * (corrupted, another layout, another prompt's block under the key) is ignored, counted and recomputed.
 */
class PrefixTierTest {
    static final int LAYERS = 3;
    static final int KV_HEADS = 2;
    static final int DIM = 8;
    static final int TPB = 4;
    static final KvLayout LAYOUT = new KvLayout(LAYERS, 4, KV_HEADS, DIM, DType.F32, TPB);
    static final String MODEL = "test-model-sha256:0123";

    private static RedisServer redis;
    private static RedisTier tier;

    @BeforeAll
    static void start() {
        redis = RedisServer.start();
        tier = redis.openWarm(RedisTierConfig.of(redis.uri()).withTimeout(Duration.ofSeconds(5)));
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

    /** What a model would compute for token {@code t} at position {@code p} (a pure function: the reference). */
    static float kv(int l, int h, int t, long p, int d, boolean key) {
        return (float) Math.sin(t * 0.77 + p * 0.13 + l * 3.1 + h * 1.7 + d * 0.9 + (key ? 0 : 5));
    }

    static void prefill(Sequence s, int[] tokens, int from) {
        KvLayout layout = s.layout();
        int kvh = layout.kvHeads();
        int dim = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            for (int p = from; p < tokens.length; p++) {
                float[] k = new float[kvh * dim];
                float[] v = new float[kvh * dim];
                for (int h = 0; h < kvh; h++) {
                    for (int d = 0; d < dim; d++) {
                        k[h * dim + d] = kv(l, h, tokens[p], p, d, true);
                        v[h * dim + d] = kv(l, h, tokens[p], p, d, false);
                    }
                }
                s.append(l, k, v, p);
            }
        }
    }

    static int[] prompt(int n, long seed) {
        int[] t = new int[n];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(32000);
        }
        return t;
    }

    /** Every row of {@code s} equals the reference for {@code tokens[0 .. rows)} at positions 0 .. rows - 1. */
    static void assertHolds(Sequence s, int[] tokens, int rows) {
        KvLayout layout = s.layout();
        int dim = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                assertEquals(rows, s.length(l, h));
                float[] k = new float[rows * dim];
                float[] v = new float[rows * dim];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                long[] pos = s.positions(l, h);
                for (int p = 0; p < rows; p++) {
                    assertEquals(p, pos[p]);
                    for (int d = 0; d < dim; d++) {
                        assertEquals(kv(l, h, tokens[p], p, d, true), k[p * dim + d], "K l" + l + " h" + h + " p" + p);
                        assertEquals(kv(l, h, tokens[p], p, d, false), v[p * dim + d], "V l" + l + " h" + h + " p" + p);
                    }
                }
            }
        }
    }

    /** One "replica": its own store, local prefix cache and prefix tier on the shared Redis. */
    record Replica(KvStore store, PrefixCache cache, PrefixTier prefix) implements AutoCloseable {
        static Replica open(KvLayout layout, String model, BlockTier t, int queue) {
            KvStore store = KvStore.open(layout);
            PrefixCache cache = PrefixCache.create(store);
            return new Replica(store, cache, PrefixTier.create(store, cache, t, model, queue));
        }

        static Replica open(BlockTier t) {
            return open(LAYOUT, MODEL, t, 256);
        }

        /** Prefills {@code tokens} from scratch and publishes its full blocks; waits for the writer. */
        void serve(int[] tokens) throws InterruptedException {
            try (Sequence s = store.newSequence()) {
                prefill(s, tokens, 0);
                prefix.publish(s, tokens);
                assertTrue(prefix.flush(30_000));
            }
        }

        @Override
        public void close() {
            prefix.close();
            cache.close();
            store.close();
        }
    }

    private List<String> storedKeys(PrefixTier p, int[] tokens) {
        List<String> out = new ArrayList<>();
        for (BlockKey k : p.blockKeys(tokens)) {
            if (redis.get(tier.redisKey(k)) != null) {
                out.add(k.hex());
            }
        }
        return out;
    }

    @Test
    void aPromptPrefilledByOneReplicaIsFetchedBitForBitByAnother() throws Exception {
        int[] tokens = prompt(10 * TPB + 3, 1);
        try (Replica a = Replica.open(tier); Replica b = Replica.open(tier)) {
            a.serve(tokens);
            assertEquals(10, a.prefix.stats().publishedBlocks());
            assertEquals(10, storedKeys(a.prefix, tokens).size());
            PrefixMatch m = b.prefix.lookup(tokens);
            try (Sequence s = m.sequence()) {
                assertEquals(10 * TPB, m.matchedTokens());
                assertHolds(s, tokens, 10 * TPB);
                prefill(s, tokens, m.matchedTokens());   // the rest computes on top, as a server would
                assertHolds(s, tokens, tokens.length);
            }
            PrefixTierStats st = b.prefix.stats();
            assertEquals(10, st.fetchedBlocks());
            assertEquals(0, st.rejectedBlocks());
            // fetched blocks went into b's local cache: the next lookup needs no tier
            long gets = tier.stats().hits();
            PrefixMatch again = b.prefix.lookup(tokens);
            again.sequence().close();
            assertEquals(10 * TPB, again.matchedTokens());
            assertEquals(gets, tier.stats().hits());
            assertEquals(10, b.prefix.stats().localBlocks());
            assertEquals(0, b.prefix.stats().queuedBlocks(), "b published nothing");
        }
    }

    @Test
    void aSharedPrefixIsFetchedUpToWhereThePromptsDiverge() throws Exception {
        int[] first = prompt(8 * TPB, 2);
        int[] second = first.clone();
        second[5 * TPB + 1] ^= 1;   // diverges inside block 5
        try (Replica a = Replica.open(tier); Replica b = Replica.open(tier)) {
            a.serve(first);
            PrefixMatch m = b.prefix.lookup(second);
            try (Sequence s = m.sequence()) {
                assertEquals(5 * TPB, m.matchedTokens());
                assertHolds(s, second, 5 * TPB);
            }
            assertEquals(5, b.prefix.stats().fetchedBlocks());
            assertEquals(3, b.prefix.stats().missedBlocks());
        }
    }

    @Test
    void compressedEvictedShiftedAndAliasedBlocksAreNeverPublished() throws Exception {
        int[] tokens = prompt(8 * TPB, 3);
        try (Replica a = Replica.open(tier)) {
            List<BlockKey> keys = a.prefix.blockKeys(tokens);
            // compression: one head of one layer drops a row of block 3
            try (Sequence s = a.store.newSequence()) {
                prefill(s, tokens, 0);
                int[] keep = new int[8 * TPB - 1];
                for (int i = 0, r = 0; r < 8 * TPB; r++) {
                    if (r != 3 * TPB + 2) {
                        keep[i++] = r;
                    }
                }
                s.keep(1, 0, keep);
                assertEquals(3, a.prefix.publish(s, tokens));
                assertTrue(a.prefix.flush(30_000));
            }
            assertEquals(keys.subList(0, 3).stream().map(BlockKey::hex).toList(), storedKeys(a.prefix, tokens));
            redis.command("FLUSHALL");
            a.prefix.close();
        }
        try (Replica a = Replica.open(tier)) {
            // eviction of a middle range
            try (Sequence s = a.store.newSequence()) {
                prefill(s, tokens, 0);
                s.removePositions(2 * TPB + 1, 2 * TPB + 3);
                assertEquals(2, a.prefix.publish(s, tokens));
                assertTrue(a.prefix.flush(30_000));
            }
            // a RoPE shift of the tail (positions move back, keys re-rotated)
            try (Sequence s = a.store.newSequence()) {
                prefill(s, tokens, 0);
                s.removePositions(6 * TPB, 6 * TPB + 1);
                s.shiftPositions(6 * TPB + 1, Long.MAX_VALUE, -1, RopeRotation.DEFAULT);
                // blocks 0..5 untouched and already known from the first sequence? no: 2..5 are new here
                assertEquals(4, a.prefix.publish(s, tokens));
                assertTrue(a.prefix.flush(30_000));
            }
            assertEquals(6, storedKeys(a.prefix, tokens).size());
            assertEquals(6, a.prefix.stats().publishedBlocks());
        }
        redis.command("FLUSHALL");
        try (Replica a = Replica.open(tier)) {
            // PoD: layer 2's keys of block 4 aliased to layer 0's
            try (Sequence s = a.store.newSequence()) {
                prefill(s, tokens, 0);
                assertTrue(s.aliasKeyBlock(2, 1, 4, 0));
                assertEquals(4, a.prefix.publish(s, tokens));
                assertTrue(a.prefix.flush(30_000));
            }
            assertEquals(4, storedKeys(a.prefix, tokens).size());
            // and a fresh replica fetches exactly the untouched blocks, bit for bit
            try (Replica b = Replica.open(tier)) {
                PrefixMatch m = b.prefix.lookup(tokens);
                try (Sequence s = m.sequence()) {
                    assertEquals(4 * TPB, m.matchedTokens());
                    assertHolds(s, tokens, 4 * TPB);
                }
            }
        }
    }

    /**
     * The decode-time path: a server publishes whenever decoding fills a block (prompt + generated tokens). Rows
     * appended one token at a time publish block by block; once a compression changes a row, no later publish of
     * that sequence sends the changed block or any block after it, however many blocks decoding fills.
     */
    @Test
    void decodingPublishesEachBlockWhenItFillsAndNothingOnceCompressed() throws Exception {
        int[] tokens = prompt(12 * TPB, 11);
        int promptRows = 2 * TPB + 1;
        try (Replica a = Replica.open(tier)) {
            List<BlockKey> keys = a.prefix.blockKeys(tokens);
            try (Sequence s = a.store.newSequence()) {
                prefill(s, java.util.Arrays.copyOf(tokens, promptRows), 0);
                assertEquals(2, a.prefix.publish(s, java.util.Arrays.copyOf(tokens, promptRows)));
                int published = 2;
                for (int p = promptRows; p < 6 * TPB; p++) {   // decode steps, one token each
                    prefill(s, java.util.Arrays.copyOf(tokens, p + 1), p);
                    if ((p + 1) % TPB == 0) {
                        published += a.prefix.publish(s, java.util.Arrays.copyOf(tokens, p + 1));
                        assertEquals((p + 1) / TPB, published, "block " + p / TPB + " published when it filled");
                    }
                }
                // compression of a decoded block: layer 2, head 1 drops one row of block 4
                int[] keep = new int[6 * TPB - 1];
                for (int i = 0, r = 0; r < 6 * TPB; r++) {
                    if (r != 4 * TPB + 1) {
                        keep[i++] = r;
                    }
                }
                s.keep(2, 1, keep);
                for (int p = 6 * TPB; p < 12 * TPB; p++) {   // decoding goes on; every block boundary publishes
                    prefill(s, java.util.Arrays.copyOf(tokens, p + 1), p);
                    if ((p + 1) % TPB == 0) {
                        assertEquals(0, a.prefix.publish(s, java.util.Arrays.copyOf(tokens, p + 1)),
                                "nothing published at " + (p + 1) + " rows after the compression");
                    }
                }
                assertTrue(a.prefix.flush(30_000));
            }
            // blocks 0..5 were stored as they filled, before the compression; none after it
            assertEquals(keys.subList(0, 6).stream().map(BlockKey::hex).toList(), storedKeys(a.prefix, tokens));
            assertEquals(6, a.prefix.stats().publishedBlocks());
            // a second replica fetches the decoded blocks bit for bit (equal to a fresh prefill's reference rows)
            try (Replica b = Replica.open(tier)) {
                PrefixMatch m = b.prefix.lookup(tokens);
                try (Sequence s = m.sequence()) {
                    assertEquals(6 * TPB, m.matchedTokens());
                    assertHolds(s, tokens, 6 * TPB);
                }
            }
        }
        redis.command("FLUSHALL");
        try (Replica a = Replica.open(tier)) {
            // compressed before its first decode-time block filled: the compressed block and every later one stay
            // out; the blocks before the changed row were already sent after prefill
            try (Sequence s = a.store.newSequence()) {
                prefill(s, java.util.Arrays.copyOf(tokens, 3 * TPB), 0);
                assertEquals(3, a.prefix.publish(s, java.util.Arrays.copyOf(tokens, 3 * TPB)));
                int[] keep = new int[3 * TPB - 1];
                for (int i = 0, r = 0; r < 3 * TPB; r++) {
                    if (r != TPB) {
                        keep[i++] = r;
                    }
                }
                s.keep(0, 0, keep);
                for (int p = 3 * TPB; p < 8 * TPB; p++) {
                    prefill(s, java.util.Arrays.copyOf(tokens, p + 1), p);
                    if ((p + 1) % TPB == 0) {
                        assertEquals(0, a.prefix.publish(s, java.util.Arrays.copyOf(tokens, p + 1)));
                    }
                }
                assertTrue(a.prefix.flush(30_000));
            }
            assertEquals(keys3(a.prefix, tokens), storedKeys(a.prefix, tokens));
        }
    }

    private static List<String> keys3(PrefixTier p, int[] tokens) {
        return p.blockKeys(tokens).subList(0, 3).stream().map(BlockKey::hex).toList();
    }

    @Test
    void aCorruptedValueIsRejectedCountedAndTheBlocksFromItRecomputed() throws Exception {
        int[] tokens = prompt(6 * TPB, 4);
        try (Replica a = Replica.open(tier); Replica b = Replica.open(tier)) {
            a.serve(tokens);
            String key = tier.redisKey(a.prefix.blockKeys(tokens).get(3));
            byte[] v = redis.get(key);
            v[v.length / 2] ^= 0x10;   // one bit in the rows
            redis.command("SET", key, v);
            PrefixMatch m = b.prefix.lookup(tokens);
            try (Sequence s = m.sequence()) {
                assertEquals(3 * TPB, m.matchedTokens());
                assertHolds(s, tokens, 3 * TPB);
            }
            assertEquals(1, b.prefix.stats().rejectedBlocks());
            assertEquals(3, b.prefix.stats().fetchedBlocks());
            // garbage of any length, including none at all, is a rejection too, never an exception
            for (byte[] garbage : new byte[][] {new byte[0], "hello".getBytes(), new byte[v.length]}) {
                redis.command("SET", tier.redisKey(a.prefix.blockKeys(tokens).get(0)), garbage);
                try (Replica c = Replica.open(tier)) {
                    PrefixMatch none = c.prefix.lookup(tokens);
                    none.sequence().close();
                    assertEquals(0, none.matchedTokens());
                    assertEquals(1, c.prefix.stats().rejectedBlocks());
                }
            }
        }
    }

    @Test
    void anotherLayoutOrModelNeverSharesAndAForeignValueUnderTheKeyIsRejected() throws Exception {
        int[] tokens = prompt(4 * TPB, 5);
        KvLayout f16 = new KvLayout(LAYERS, 4, KV_HEADS, DIM, DType.F16, TPB);
        try (Replica a = Replica.open(tier); Replica other = Replica.open(f16, MODEL, tier, 16);
             Replica otherModel = Replica.open(LAYOUT, "another-model", tier, 16)) {
            a.serve(tokens);
            for (Replica r : List.of(other, otherModel)) {
                PrefixMatch m = r.prefix.lookup(tokens);
                m.sequence().close();
                assertEquals(0, m.matchedTokens());
                assertEquals(0, r.prefix.stats().rejectedBlocks(), "other keys: a plain miss");
            }
            // a wrong salt (someone stored a value of another layout under the f16 replica's key): rejected
            BlockKey f16Key = other.prefix.blockKeys(tokens).get(0);
            redis.command("SET", tier.redisKey(f16Key), redis.get(tier.redisKey(a.prefix.blockKeys(tokens).get(0))));
            PrefixMatch m = other.prefix.lookup(tokens);
            m.sequence().close();
            assertEquals(0, m.matchedTokens());
            assertEquals(1, other.prefix.stats().rejectedBlocks());
            // another prompt's block stored under this prompt's key (a hash collision): its tokens differ, a miss
            int[] elsewhere = prompt(4 * TPB, 6);
            a.serve(elsewhere);
            redis.command("SET", tier.redisKey(a.prefix.blockKeys(tokens).get(0)),
                    redis.get(tier.redisKey(a.prefix.blockKeys(elsewhere).get(0))));
            try (Replica b = Replica.open(tier)) {
                PrefixMatch c = b.prefix.lookup(tokens);
                c.sequence().close();
                assertEquals(0, c.matchedTokens());
                assertEquals(1, b.prefix.stats().rejectedBlocks());
            }
        }
    }

    @Test
    void tierCallsAndPrefixDecisionsAreJfrEvents(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        int[] tokens = prompt(5 * TPB, 8);
        java.nio.file.Path jfr = dir.resolve("tier.jfr");
        try (jdk.jfr.Recording recording = new jdk.jfr.Recording()) {
            recording.enable("io.kvslab.Tier").withoutThreshold();
            recording.start();
            try (Replica a = Replica.open(tier); Replica b = Replica.open(tier)) {
                a.serve(tokens);
                String key = tier.redisKey(a.prefix.blockKeys(tokens).get(2));
                byte[] v = redis.get(key);
                v[v.length - 1] ^= 1;   // the record's CRC32C no longer matches
                redis.command("SET", key, v);
                b.prefix.lookup(tokens).sequence().close();
            }
            recording.stop();
            recording.dump(jfr);
        }
        java.util.Map<String, Long> ops = new java.util.TreeMap<>();
        String rejectReason = null;
        for (jdk.jfr.consumer.RecordedEvent e : jdk.jfr.consumer.RecordingFile.readAllEvents(jfr)) {
            if (e.getEventType().getName().equals("io.kvslab.Tier")) {
                ops.merge(e.getString("operation"), (long) e.getInt("keys"), Long::sum);
                if (e.getString("operation").equals("reject")) {
                    rejectReason = e.getString("failure");
                }
            }
        }
        assertEquals(5L, ops.get("publish"), "one publish event per block: " + ops);
        assertEquals(5L, ops.get("put"), ops.toString());
        assertEquals(5L, ops.get("getAll"), "one pipelined batch of the 5 blocks: " + ops);
        assertEquals(2L, ops.get("fetch"), "blocks 0 and 1 fetched: " + ops);
        assertEquals(1L, ops.get("reject"), ops.toString());
        assertTrue(rejectReason.startsWith("CHECKSUM_MISMATCH"), rejectReason);
    }

    @Test
    void redisDownOrPausedLookupsFallBackAndPublishNeverWaits() throws Exception {
        int[] tokens = prompt(6 * TPB, 7);
        try (RedisServer own = RedisServer.start();
             RedisTier t = own.openWarm(RedisTierConfig.of(own.uri()).withTimeout(Duration.ofMillis(200)))) {
            try (Replica a = Replica.open(LAYOUT, MODEL, t, 2); Replica b = Replica.open(LAYOUT, MODEL, t, 2)) {
                own.command("CLIENT", "PAUSE", "4000", "ALL");
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                    try (Sequence s = a.store.newSequence()) {
                        prefill(s, tokens, 0);
                        a.prefix.publish(s, tokens);   // 2 fit the queue, the rest is dropped: no wait
                    }
                    PrefixMatch m = b.prefix.lookup(tokens);   // times out: a miss, the caller recomputes
                    m.sequence().close();
                    assertEquals(0, m.matchedTokens());
                });
                PrefixTierStats s = a.prefix.stats();
                assertTrue(s.droppedBlocks() >= 3, "dropped " + s);
                assertEquals(6, s.droppedBlocks() + s.queuedBlocks());
                assertEquals(6, t.stats().getFailures(), "b's batch of 6 timed out, counted by the tier");
                own.kill();
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                    PrefixMatch m = b.prefix.lookup(tokens);
                    m.sequence().close();
                    assertEquals(0, m.matchedTokens());
                    assertTrue(a.prefix.flush(10_000), "the writer finishes (with failures) while Redis is down");
                });
                assertEquals(12, t.stats().getFailures());
                assertEquals(0, a.prefix.stats().publishedBlocks());
                assertEquals(a.prefix.stats().queuedBlocks(), a.prefix.stats().publishFailures());
            }
        }
    }
}
