package io.kvslab.bench.serve;

import dev.langchain4j.model.StreamingResponseHandler;
import dev.langchain4j.model.openai.OpenAiLanguageModel;
import dev.langchain4j.model.openai.OpenAiStreamingLanguageModel;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.Response;
import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LangChain4j's OpenAI completion clients against the server: the exact greedy text of llama2.c's "Once upon a time"
 * golden. These clients send no {@code max_tokens}, so the server applies OpenAI's default of 16: the golden's first
 * 16 completion tokens.
 */
class LangChain4jClientTest {
    private static ServeFixture f;
    private static String expected;

    @BeforeAll
    static void start() throws Exception {
        f = new ServeFixture(ServeConfig.defaults().withMaxBatch(8));
        SharedModels.Golden g = SharedModels.goldens().stream()
                .filter(x -> x.file().equals("greedy-once-upon-a-time.json")).findFirst().orElseThrow();
        int promptLength = f.model.tokenizer().encode(g.prompt(), true, false).length;
        int[] first16 = Arrays.copyOfRange(g.ids(), promptLength - 1, promptLength - 1 + RequestParser.DEFAULT_MAX_TOKENS);
        expected = f.model.tokenizer().render(g.ids()[promptLength - 2], first16);
        assertTrue(g.text().contains(expected.strip()), "the expected text is the golden's: " + expected);
    }

    @AfterAll
    static void stop() {
        if (f != null) {
            f.close();
        }
    }

    @Test
    void nonStreaming() {
        OpenAiLanguageModel model = OpenAiLanguageModel.builder().baseUrl(f.server.baseUrl() + "/v1").apiKey("unused")
                .modelName("stories260K").temperature(0.0).timeout(Duration.ofSeconds(30)).maxRetries(0).build();
        Response<String> r = model.generate("Once upon a time");
        assertEquals(expected, r.content());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(RequestParser.DEFAULT_MAX_TOKENS, r.tokenUsage().outputTokenCount());
    }

    @Test
    void streaming() throws Exception {
        OpenAiStreamingLanguageModel model = OpenAiStreamingLanguageModel.builder().baseUrl(f.server.baseUrl() + "/v1")
                .apiKey("unused").modelName("stories260K").temperature(0.0).timeout(Duration.ofSeconds(30)).build();
        StringBuilder pieces = new StringBuilder();
        int[] count = new int[1];
        CompletableFuture<Response<String>> done = new CompletableFuture<>();
        model.generate("Once upon a time", new StreamingResponseHandler<>() {
            @Override
            public void onNext(String token) {
                pieces.append(token);
                count[0]++;
            }

            @Override
            public void onComplete(Response<String> response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        Response<String> r = done.get(30, TimeUnit.SECONDS);
        assertEquals(expected, pieces.toString());
        assertEquals(expected, r.content());
        assertTrue(count[0] > 1, "the text arrived in pieces");
    }
}
