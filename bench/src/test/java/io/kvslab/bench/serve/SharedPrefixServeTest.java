package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import io.kvslab.tier.PrefixTierStats;
import io.kvslab.tier.RedisServer;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;

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
                assertEquals(promptLength / 32, published.publishedBlocks(), "every full prompt block published");

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
}
