package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvslab.DType;
import io.kvslab.bench.model.Generation;
import io.kvslab.bench.model.Generator;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.StoreKvCache;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code serve --kv-dtype}: a server keeping its K/V rows quantised serves requests (four at once, so they share
 * decode steps) to completion, and each gets exactly the greedy tokens of the Java model run alone on a store of the
 * same K/V types ({@code kvslab generate --kv-dtype}'s path: scalar products, one sequence, the native kernel). How far
 * the quantised run is from the f32 one is measured and printed, not asserted (that is the fidelity pages' subject).
 */
class ServingKvDtypeTest {
    private static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Ben", "The little dog",
            "One day, a girl named Sue went to the park");
    private static final int MAX_TOKENS = 80;

    @ParameterizedTest
    @CsvSource({"Q8_0, Q8_0", "Q8_0, Q4_0"})
    void quantisedKvServesTheSameTokensAsTheModelOnThatStore(DType key, DType value) throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withKvDtypes(key, value))) {
            List<int[]> served = new ArrayList<>();
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<JsonNode>> answers = new ArrayList<>();
                for (String p : PROMPTS) {
                    answers.add(pool.submit(() -> f.complete(body(p))));
                }
                for (Future<JsonNode> a : answers) {
                    JsonNode r = a.get();
                    String finish = r.path("choices").path(0).path("finish_reason").asText();
                    assertTrue(finish.equals("length") || finish.equals("stop"), r.toString());
                    served.add(ServeFixture.tokenIds(r));
                }
            }
            for (int i = 0; i < PROMPTS.size(); i++) {
                int[] expected = onStore(f.model, PROMPTS.get(i), key, value);
                assertArrayEquals(expected, served.get(i), PROMPTS.get(i) + " on K " + key + " / V " + value);
                int[] f32 = f.reference(PROMPTS.get(i), MAX_TOKENS, 0, 1, 1).ids();
                System.out.printf(Locale.ROOT, "kv-dtype K %s V %s, '%s': %d tokens, agreement with f32 %.3f "
                        + "(first divergence at %d)%n", key, value, PROMPTS.get(i), served.get(i).length,
                        agreement(served.get(i), f32), firstDifference(served.get(i), f32));
            }
            assertEquals(0.0, ServeFixture.metric(f.metrics(), "kvslab_requests_total{outcome=\"failed\"}"));
        }
    }

    private static String body(String prompt) {
        ObjectNode b = ServeFixture.JSON.createObjectNode();
        b.put("prompt", prompt);
        b.put("max_tokens", MAX_TOKENS);
        b.put("temperature", 0);
        b.put("return_token_ids", true);
        return b.toString();
    }

    /** The greedy completion of {@code prompt} by the Java model alone on a store of K as {@code key}, V as {@code value}. */
    private static int[] onStore(LoadedModel m, String prompt, DType key, DType value) {
        int promptLength = m.tokenizer().encode(prompt, true, false).length;
        StoreKvCache cache = StoreKvCache.open(m.model().config(), key, value, KernelAttention.create(2));
        try (Session s = new Session(m.model(), cache, MatMul.JAVA, Session.DEFAULT_CHUNK)) {
            Generation g = Generator.generate(s, m.tokenizer(), prompt, promptLength - 1 + MAX_TOKENS,
                    new Sampler(m.model().config().vocabSize(), 0, 1, 1), null);
            return Arrays.copyOfRange(g.ids(), promptLength - 1, g.ids().length);
        }
    }

    /** Positions with the same token, over the longer run's length. */
    private static double agreement(int[] a, int[] b) {
        int same = 0;
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            same += a[i] == b[i] ? 1 : 0;
        }
        return (double) same / Math.max(1, Math.max(a.length, b.length));
    }

    private static int firstDifference(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        for (int i = 0; i < n; i++) {
            if (a[i] != b[i]) {
                return i;
            }
        }
        return a.length == b.length ? -1 : n;
    }
}
