package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvslab.bench.model.Generation;
import io.kvslab.bench.model.Generator;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.SharedModels;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;

/** A server on a free loopback port over stories260K, an HTTP client, and the independent reference runner. */
final class ServeFixture implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();

    final LoadedModel model = SharedModels.bin();
    final CompletionServer server;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    ServeFixture(ServeConfig config) throws IOException {
        this(config, null);
    }

    /** A server sharing prefix blocks through {@code tiers} (null: none). */
    ServeFixture(ServeConfig config, TierOptions tiers) throws IOException {
        server = CompletionServer.start(model, "stories260K.bin", config, tiers, "127.0.0.1", 0);
    }

    URI uri(String path) {
        return URI.create(server.baseUrl() + path);
    }

    HttpResponse<String> post(String body) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri("/v1/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    JsonNode complete(String body) throws IOException, InterruptedException {
        HttpResponse<String> r = post(body);
        if (r.statusCode() != 200) {
            throw new AssertionError("HTTP " + r.statusCode() + ": " + r.body());
        }
        return JSON.readTree(r.body());
    }

    static int[] tokenIds(JsonNode completion) {
        JsonNode ids = completion.path("choices").path(0).path("token_ids");
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i).intValue();
        }
        return out;
    }

    /**
     * What llama2.c's arithmetic (Java matmul, Java KV arrays) generates after {@code prompt} for {@code maxTokens}
     * completion tokens: the ids and the text, prompt excluded.
     */
    Expected reference(String prompt, int maxTokens, float temperature, float topp, long seed) {
        int promptLength = model.tokenizer().encode(prompt, true, false).length;
        try (Session s = Session.reference(model.model())) {
            Generation g = Generator.generate(s, model.tokenizer(), prompt, promptLength - 1 + maxTokens,
                    new Sampler(model.model().config().vocabSize(), temperature, topp, seed), null);
            int[] generated = Arrays.copyOfRange(g.ids(), promptLength - 1, g.ids().length);
            int previous = g.promptTokens()[promptLength - 1];
            return new Expected(generated, model.tokenizer().render(previous, generated));
        }
    }

    record Expected(int[] ids, String text) {}

    String metrics() throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri("/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    static double metric(String text, String name) {
        for (String line : text.split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(name.length() + 1).trim());
            }
        }
        throw new AssertionError("no metric " + name + " in\n" + text);
    }

    @Override
    public void close() {
        server.close();
    }
}
