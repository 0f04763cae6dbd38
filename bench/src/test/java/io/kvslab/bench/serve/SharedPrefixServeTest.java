package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvslab.tier.PrefixTierStats;
import io.kvslab.tier.RedisServer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two servers with separate KV stores sharing one real Redis ({@code --remote-tier}): a long prompt served by the
 * first is served by the second with its full blocks fetched from Redis (not recomputed) and the same tokens as
 * llama2.c's reference; with Redis gone, requests still complete by recomputing.
 */
class SharedPrefixServeTest {
    /** About 400 tokens of stories260K's vocabulary (the context is 512). */
    static final String LONG_PROMPT = ("Once upon a time, there was a little girl named Lily. She loved to play "
            + "outside in the park with her friends. One day, she saw a big red ball near the tree. ").repeat(8);

    private static String body(int maxTokens) {
        return "{\"prompt\": " + ServeFixture.JSON.valueToTree(LONG_PROMPT) + ", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0, \"return_token_ids\": true}";
    }

    @Test
    void aPromptServedByOneServerIsFetchedFromRedisByTheOtherWithIdenticalTokens() throws Exception {
        try (RedisServer redis = RedisServer.start()) {
            TierOptions tiers = TierOptions.redis(redis.uri()).withTimeout(Duration.ofSeconds(5));
            try (ServeFixture first = new ServeFixture(ServeConfig.defaults(), tiers);
                 ServeFixture second = new ServeFixture(ServeConfig.defaults(), tiers)) {
                int promptLength = first.model.tokenizer().encode(LONG_PROMPT, true, false).length;
                assertTrue(promptLength > 350 && promptLength < 480, "prompt of " + promptLength + " tokens");
                int fullBlocks = (promptLength - 1) / 32;   // the last prompt token always runs
                ServeFixture.Expected expected = first.reference(LONG_PROMPT, 24, 0, 1, 1);

                JsonNode a = first.complete(body(24));
                assertArrayEquals(expected.ids(), ServeFixture.tokenIds(a));
                assertTrue(first.server.scheduler().shared().flush(60_000));
                PrefixTierStats published = first.server.scheduler().shared().stats();
                // the prompt's full blocks after its prefill, then those decoding filled (the last token is never fed)
                assertEquals((promptLength + expected.ids().length - 1) / 32, published.publishedBlocks(),
                        "every full block of prompt and generated tokens published");

                JsonNode b = second.complete(body(24));
                assertArrayEquals(expected.ids(), ServeFixture.tokenIds(b), "identical tokens on the second server");
                PrefixTierStats fetched = second.server.scheduler().shared().stats();
                assertTrue(fetched.fetchedBlocks() >= Math.ceil(0.95 * fullBlocks),
                        fetched.fetchedBlocks() + " of " + fullBlocks + " full blocks fetched from Redis");
                assertEquals(0, fetched.rejectedBlocks());
                String metrics = second.metrics();
                assertEquals(fetched.fetchedBlocks(),
                        ServeFixture.metric(metrics, "kvslab_tier_prefix_blocks_total{source=\"tier\"}"));
                // the second server prefilled only the tail: the prompt tokens it computed are the rest
                assertEquals(promptLength - 32L * fetched.fetchedBlocks(),
                        ServeFixture.metric(metrics, "kvslab_prompt_tokens_total"));

                // Redis gone: both servers still answer, by recompute or from their local caches
                redis.kill();
                String other = "{\"prompt\": \"A cat sat on a mat. " + "The dog ran fast. ".repeat(20)
                        + "\", \"max_tokens\": 8, \"temperature\": 0, \"return_token_ids\": true}";
                assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                    JsonNode c = second.complete(other);
                    assertEquals(8, ServeFixture.tokenIds(c).length);
                    JsonNode d = first.complete(body(24));
                    assertArrayEquals(expected.ids(), ServeFixture.tokenIds(d));
                });
            }
        }
    }

    /**
     * The same through a 3-master Redis Cluster ({@code --remote-tier redis-cluster://...}): the second server
     * fetches at least 95% of the prompt's full blocks, spread over the masters, and answers the reference's tokens.
     */
    @Test
    void twoServersShareAPromptThroughARedisCluster() throws Exception {
        try (io.kvslab.tier.RedisCluster cluster = io.kvslab.tier.RedisCluster.start(3)) {
            TierOptions tiers = TierOptions.redis(cluster.uri()).withTimeout(Duration.ofSeconds(5));
            try (ServeFixture first = new ServeFixture(ServeConfig.defaults(), tiers);
                 ServeFixture second = new ServeFixture(ServeConfig.defaults(), tiers)) {
                int promptLength = first.model.tokenizer().encode(LONG_PROMPT, true, false).length;
                int fullBlocks = (promptLength - 1) / 32;
                ServeFixture.Expected expected = first.reference(LONG_PROMPT, 16, 0, 1, 1);
                assertArrayEquals(expected.ids(), ServeFixture.tokenIds(first.complete(body(16))));
                assertTrue(first.server.scheduler().shared().flush(60_000));
                long stored = 0;
                for (List<String> onNode : cluster.keysPerNode("kvslab:*")) {
                    assertTrue(!onNode.isEmpty(), "every master holds some of the blocks");
                    stored += onNode.size();
                }
                assertEquals(first.server.scheduler().shared().stats().publishedBlocks(), stored);

                assertArrayEquals(expected.ids(), ServeFixture.tokenIds(second.complete(body(16))),
                        "identical tokens on the second server");
                PrefixTierStats fetched = second.server.scheduler().shared().stats();
                assertTrue(fetched.fetchedBlocks() >= Math.ceil(0.95 * fullBlocks),
                        fetched.fetchedBlocks() + " of " + fullBlocks + " full blocks fetched from the cluster: "
                                + fetched + "\n" + second.metrics());
                assertEquals(0, fetched.rejectedBlocks());
            }
        }
    }

    /**
     * Blocks that fill while decoding are published too (#16: "when it becomes full and immutable"): a follow-up
     * whose prompt is the first request's prompt followed by its completion is served by another server with the
     * blocks of prompt and generated tokens fetched from Redis, and the same tokens as the reference.
     */
    @Test
    void blocksFilledWhileDecodingArePublishedAndAFollowUpFetchesThem() throws Exception {
        String prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
        int maxTokens = 150;
        try (RedisServer redis = RedisServer.start()) {
            TierOptions tiers = TierOptions.redis(redis.uri()).withTimeout(Duration.ofSeconds(5));
            try (ServeFixture first = new ServeFixture(ServeConfig.defaults(), tiers);
                 ServeFixture second = new ServeFixture(ServeConfig.defaults(), tiers)) {
                int[] promptIds = first.model.tokenizer().encode(prompt, true, false);
                ServeFixture.Expected expected = first.reference(prompt, maxTokens, 0, 1, 1);
                JsonNode a = first.complete("{\"prompt\": " + ServeFixture.JSON.valueToTree(prompt)
                        + ", \"max_tokens\": " + maxTokens + ", \"temperature\": 0, \"return_token_ids\": true}");
                int[] generated = ServeFixture.tokenIds(a);
                assertArrayEquals(expected.ids(), generated);
                // the sequence held the prompt and every generated token but the last (never fed back)
                int held = promptIds.length + generated.length - 1;
                assertTrue(held / 32 > promptIds.length / 32 + 1, "decoding filled " + (held / 32 - promptIds.length
                        / 32) + " blocks past the prompt's (prompt " + promptIds.length + ", generated "
                        + generated.length + ")");
                assertTrue(first.server.scheduler().shared().flush(60_000));
                assertEquals(held / 32, first.server.scheduler().shared().stats().publishedBlocks(),
                        "every full block of prompt and generated tokens published, each once");

                // the follow-up prompt: prompt + completion text, which tokenizes to the same ids up to some point
                String followUp = prompt + a.path("choices").path(0).path("text").asText();
                int[] followIds = first.model.tokenizer().encode(followUp, true, false);
                int[] heldIds = Arrays.copyOf(promptIds, held);
                System.arraycopy(generated, 0, heldIds, promptIds.length, held - promptIds.length);
                int same = Arrays.mismatch(heldIds, followIds);
                same = same < 0 ? Math.min(heldIds.length, followIds.length) : same;
                int sharedBlocks = Math.min(same, followIds.length - 1) / 32;
                assertTrue(sharedBlocks > promptIds.length / 32, "the follow-up shares " + same + " tokens ("
                        + sharedBlocks + " blocks) with what the first request held");
                ServeFixture.Expected next = first.reference(followUp, 16, 0, 1, 1);
                JsonNode b = second.complete("{\"prompt\": " + ServeFixture.JSON.valueToTree(followUp)
                        + ", \"max_tokens\": 16, \"temperature\": 0, \"return_token_ids\": true}");
                assertArrayEquals(next.ids(), ServeFixture.tokenIds(b), "the follow-up's tokens equal the reference");
                PrefixTierStats fetched = second.server.scheduler().shared().stats();
                assertEquals(sharedBlocks, fetched.fetchedBlocks(), "prompt and decoded blocks fetched from Redis");
                assertEquals(0, fetched.rejectedBlocks());
            }
        }
    }

    /**
     * #16: "never a compressed block", through {@code serve}: a server whose KV limit holds 6 blocks per table and
     * whose pressure policy compresses ({@code compress:streamingllm:64}) serves a short prompt that decodes far
     * past the limit. Decoding publishes each block as it fills, up to the 6 that fit; the policy then compresses
     * the request, and the blocks that fill after it (held, full, but not what a fresh prefill of their tokens
     * stores) are never published. Every value left in its Redis must be byte for byte the value an unconstrained
     * server (with its own Redis) publishes under the same key. (The prompt is under one block on purpose: a full
     * prompt block is shared with the prefix cache, and compressing it needs a fresh block that a full store does
     * not have; see docs/tiers.md.)
     */
    @Test
    void aCompressedRequestPublishesNoneOfItsChangedBlocks() throws Exception {
        String prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
        int maxTokens = 250;
        int limitBlocks = 6;
        String body = "{\"prompt\": " + ServeFixture.JSON.valueToTree(prompt) + ", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0, \"return_token_ids\": true}";
        io.kvslab.KvLayout layout = io.kvslab.bench.model.StoreKvCache.layout(
                io.kvslab.bench.model.SharedModels.bin().model().config(), io.kvslab.DType.F32);
        long limit = ServeStore.bytesFor(layout, (long) limitBlocks * 32);
        ServeConfig constrained = ServeConfig.defaults().withKvLimit(limit, 8L * layout.blockBytes())
                .withPressure("compress:streamingllm:64");
        try (RedisServer redis = RedisServer.start(); RedisServer fresh = RedisServer.start()) {
            TierOptions tiers = TierOptions.redis(redis.uri()).withTimeout(Duration.ofSeconds(5));
            TierOptions freshTiers = TierOptions.redis(fresh.uri()).withTimeout(Duration.ofSeconds(5));
            int[] promptIds;
            int[] generated;
            try (ServeFixture server = new ServeFixture(constrained, tiers)) {
                promptIds = server.model.tokenizer().encode(prompt, true, false);
                assertTrue(promptIds.length < 32, "prompt of " + promptIds.length + " tokens, under one block");
                generated = ServeFixture.tokenIds(server.complete(body));
                assertTrue(server.server.scheduler().shared().flush(60_000));
                assertEquals(1.0, ServeFixture.metric(server.metrics(), "kvslab_preemptions_total{action=\"compress\"}"),
                        "the policy compressed the request once");
                assertEquals(server.server.scheduler().shared().stats().publishedBlocks(),
                        redis.keys("kvslab:*").size());
            }
            int held = promptIds.length + generated.length - 1;
            List<String> published = redis.keys("kvslab:*");
            assertEquals(limitBlocks, published.size(), "the blocks that filled before the compression");
            assertTrue(held - limitBlocks * 32 >= 2 * 32, "the request held " + held + " tokens: at least two "
                    + "blocks filled after the compression (which kept 64 rows of " + limitBlocks * 32 + ")");

            try (ServeFixture reference = new ServeFixture(ServeConfig.defaults(), freshTiers)) {
                reference.complete(body);
                assertTrue(reference.server.scheduler().shared().flush(60_000));
            }
            for (String key : published) {
                byte[] expected = fresh.get(key);
                assertTrue(expected != null, key + " is not a block the unconstrained server published");
                assertArrayEquals(expected, redis.get(key), key + " holds other bytes than a fresh prefill's");
            }
        }
    }

    /**
     * #16: a prefix-cache miss that reads through to a paused Redis must not stall the other requests: the fetch
     * runs off the scheduler thread and the request joins the batch when it is done (here: when the tier's timeout
     * gives up). A short request submitted after it is admitted and runs to its end while the long prompt's fetch
     * still waits; then the long prompt is recomputed and answers the reference's tokens. (No timing is asserted:
     * the fetch waits 10 s for a paused server, the short request needs a few dozen steps.)
     */
    @Test
    void aFetchFromAPausedRedisDoesNotStallTheRunningRequests() throws Exception {
        try (RedisServer redis = RedisServer.start()) {
            TierOptions tiers = TierOptions.redis(redis.uri()).withTimeout(Duration.ofSeconds(10));
            try (ServeFixture server = new ServeFixture(ServeConfig.defaults(), tiers)) {
                Scheduler scheduler = server.server.scheduler();
                ServeFixture.Expected longExpected = server.reference(LONG_PROMPT, 8, 0, 1, 1);
                String shortPrompt = "Once upon a time";   // under one block: nothing to fetch
                ServeFixture.Expected shortExpected = server.reference(shortPrompt, 48, 0, 1, 1);
                redis.command("CLIENT", "PAUSE", "30000", "ALL");
                assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
                    java.util.concurrent.CompletableFuture<java.net.http.HttpResponse<String>> longAnswer =
                            server.http.sendAsync(java.net.http.HttpRequest.newBuilder(server.uri("/v1/completions"))
                                    .header("Content-Type", "application/json")
                                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body(8))).build(),
                                    java.net.http.HttpResponse.BodyHandlers.ofString());
                    while (scheduler.fetchingRequests() == 0) {
                        assertTrue(!longAnswer.isDone(), "the long prompt answered before its fetch started");
                        Thread.sleep(2);
                    }
                    JsonNode shortAnswer = server.complete("{\"prompt\": \"" + shortPrompt + "\", \"max_tokens\": 48,"
                            + " \"temperature\": 0, \"return_token_ids\": true}");
                    assertArrayEquals(shortExpected.ids(), ServeFixture.tokenIds(shortAnswer));
                    assertEquals(1, scheduler.fetchingRequests(),
                            "the short request ran to its end while the long prompt's fetch still waited on Redis");
                    assertTrue(!longAnswer.isDone());
                    java.net.http.HttpResponse<String> r = longAnswer.get();
                    assertEquals(200, r.statusCode(), r.body());
                    assertArrayEquals(longExpected.ids(), ServeFixture.tokenIds(ServeFixture.JSON.readTree(r.body())),
                            "recomputed after the fetch timed out: the reference's tokens");
                });
                PrefixTierStats stats = scheduler.shared().stats();
                assertEquals(0, stats.fetchedBlocks());
                int promptLength = server.model.tokenizer().encode(LONG_PROMPT, true, false).length;
                assertEquals((promptLength - 1) / 32, stats.missedBlocks(), "every block of the long prompt recomputed");
                java.util.regex.Matcher failed = java.util.regex.Pattern
                        .compile("op=\"get\",outcome=\"failed\"} (\\d+)").matcher(server.metrics());
                assertTrue(failed.find() && Long.parseLong(failed.group(1)) >= (promptLength - 1) / 32,
                        "the timed-out GETs are counted by the tier");
            }
        }
    }
}
