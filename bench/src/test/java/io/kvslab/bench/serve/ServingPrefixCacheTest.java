package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With {@code --prefix-cache}, a prompt served twice prefills its cached full blocks only once, and the second answer
 * is still exactly the reference runner's (the cached K/V are the rows the first request computed).
 */
class ServingPrefixCacheTest {
    private static final String PROMPT = "One day, a girl named Sue went to the park. She saw a big red ball and a little"
            + " dog. The dog was happy and ran to the ball. Sue laughed and played with the dog all day long.";

    @Test
    void aRepeatedPromptHitsTheCacheAndKeepsItsTokens() throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withPrefixCache(true))) {
            int promptLength = f.model.tokenizer().encode(PROMPT, true, false).length;
            assertTrue(promptLength > 33, "the prompt must span a full 32-token block plus its last token");
            ServeFixture.Expected alone = f.reference(PROMPT, 24, 0, 1, 1);
            String body = "{\"prompt\":\"" + PROMPT + "\",\"max_tokens\":24,\"temperature\":0,\"return_token_ids\":true}";
            JsonNode first = f.complete(body);
            assertArrayEquals(alone.ids(), ServeFixture.tokenIds(first));
            double promptTokensAfterFirst = ServeFixture.metric(f.metrics(), "kvslab_prompt_tokens_total");
            assertEquals(0, ServeFixture.metric(f.metrics(), "kvslab_prefix_hit_blocks_total"));
            JsonNode second = f.complete(body);
            assertArrayEquals(alone.ids(), ServeFixture.tokenIds(second));
            String m = f.metrics();
            int cachedBlocks = (promptLength - 1) / 32;
            assertEquals(cachedBlocks, ServeFixture.metric(m, "kvslab_prefix_hit_blocks_total"));
            // the second request prefilled only what the cache did not hold
            assertEquals(promptLength - cachedBlocks * 32,
                    ServeFixture.metric(m, "kvslab_prompt_tokens_total") - promptTokensAfterFirst);
        }
    }
}
