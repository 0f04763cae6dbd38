package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A request's tokens do not depend on what shares its batch: every request of a batch of 1, 7 or 32 (the same prompt
 * repeated, different prompts, greedy and seeded sampling mixed) gets exactly the tokens llama2.c's arithmetic gives
 * it alone, and the golden prompts give llama2.c's golden outputs.
 */
class ServingDeterminismTest {
    private static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Ben", "", "The little dog",
            "Tom had a red ball", "One day, a girl named Sue went to the park");
    private static ServeFixture f;

    @BeforeAll
    static void start() throws Exception {
        f = new ServeFixture(ServeConfig.defaults().withMaxBatch(32));
    }

    @AfterAll
    static void stop() {
        if (f != null) {
            f.close();
        }
    }

    /** A request spec and what the reference runner generates for it alone. */
    private record Case(String prompt, int maxTokens, float temperature, float topp, long seed, ServeFixture.Expected expected) {
        String body() {
            ObjectNode b = ServeFixture.JSON.createObjectNode();
            b.put("prompt", prompt);
            b.put("max_tokens", maxTokens);
            b.put("temperature", temperature);
            b.put("top_p", topp);
            b.put("seed", seed);
            b.put("return_token_ids", true);
            return b.toString();
        }
    }

    private static Case reference(String prompt, int maxTokens, float temperature, float topp, long seed) {
        return new Case(prompt, maxTokens, temperature, topp, seed, f.reference(prompt, maxTokens, temperature, topp, seed));
    }

    @Test
    void goldensAloneEqualLlama2c() throws Exception {
        for (SharedModels.Golden g : SharedModels.goldens()) {
            int promptLength = f.model.tokenizer().encode(g.prompt(), true, false).length;
            int maxTokens = g.steps() - promptLength + 1;
            // the golden's ids list the prompt tokens (BOS excluded) first
            int[] generated = Arrays.copyOfRange(g.ids(), promptLength - 1, g.ids().length);
            String text = f.model.tokenizer().render(promptLength == 1 ? f.model.tokenizer().bos()
                    : g.ids()[promptLength - 2], generated);
            float topp = g.temperature() == 0 ? 1.0f : g.topp();
            Case c = new Case(g.prompt(), maxTokens, g.temperature(), topp, g.seed(), null);
            JsonNode r = f.complete(c.body());
            assertArrayEquals(generated, ServeFixture.tokenIds(r), g.file());
            assertEquals(text, r.path("choices").path(0).path("text").asText(), g.file());
            assertEquals(promptLength, r.path("usage").path("prompt_tokens").intValue());
            assertEquals(generated.length, r.path("usage").path("completion_tokens").intValue());
            assertEquals(promptLength + generated.length, r.path("usage").path("total_tokens").intValue());
            assertEquals(generated.length == maxTokens ? "length" : "stop",
                    r.path("choices").path(0).path("finish_reason").asText(), g.file());
        }
    }

    @ParameterizedTest(name = "batch of {0}")
    @ValueSource(ints = {1, 7, 32})
    void batchDoesNotChangeTokens(int batch) throws Exception {
        assertBatchGetsItsAloneTokens(f, batch);
    }

    /** The decode-attention threads split a layer's rows, never one row's sums: one thread gives the same tokens. */
    @Test
    void oneDecodeThreadGivesTheSameTokens() throws Exception {
        try (ServeFixture one = new ServeFixture(ServeConfig.defaults().withMaxBatch(32).withDecodeThreads(1))) {
            assertBatchGetsItsAloneTokens(one, 7);
        }
    }

    private static void assertBatchGetsItsAloneTokens(ServeFixture f, int batch) throws Exception {
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            String prompt = PROMPTS.get(i % 3 == 0 ? 0 : i % PROMPTS.size()); // the first prompt repeats
            int maxTokens = 40 + 13 * (i % 5);                                // rows finish at different steps
            boolean sampled = i % 4 == 3;
            cases.add(sampled ? reference(prompt, maxTokens, 1.0f, 0.9f, 42 + i) : reference(prompt, maxTokens, 0, 1, 1));
        }
        f.server.scheduler().pause();
        List<JsonNode> answers = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<JsonNode>> fs = new ArrayList<>();
            for (Case c : cases) {
                fs.add(pool.submit(() -> f.complete(c.body())));
            }
            // every request queued before the scheduler runs again: they all join the same first step
            while (f.server.metrics().waiting.get() < batch) {
                Thread.sleep(1);
            }
            f.server.scheduler().resume();
            for (Future<JsonNode> x : fs) {
                answers.add(x.get());
            }
        } finally {
            f.server.scheduler().resume();
        }
        for (int i = 0; i < batch; i++) {
            Case c = cases.get(i);
            assertArrayEquals(c.expected().ids(), ServeFixture.tokenIds(answers.get(i)), "request " + i + " (" + c + ")");
            assertEquals(c.expected().text(), answers.get(i).path("choices").path(0).path("text").asText());
        }
        assertTrue(f.server.metrics().peakBatch.get() >= batch, "the " + batch + " requests decoded in one batch");
    }
}
