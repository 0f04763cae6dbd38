package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --kv-limit}: stories260K stores 1,280 bytes per token (f32); a 32-token block row across 5 layers x 4 KV
 * heads x K and V is 40 blocks of 1 KiB. With one 64 KiB slab as the limit, one short request fits and two do not.
 */
class ServingMemoryTest {
    private static final long SLAB = 64 << 10;

    /**
     * Sends a 500-token streaming request on a raw socket (so the test can drop or watch the connection), lets the
     * scheduler run two steps (prefill and first tokens) and hold, and returns the reader positioned after the first
     * {@code data:} line, which it checks holds a token.
     */
    private static BufferedReader streamUntilTheFirstToken(ServeFixture f, Socket s) throws Exception {
        String body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":500,\"temperature\":0,\"stream\":true}";
        f.server.scheduler().pause();
        OutputStream out = s.getOutputStream();
        out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
                .getBytes(StandardCharsets.UTF_8));
        out.flush();
        while (f.server.metrics().waiting.get() < 1) {
            Thread.sleep(1);
        }
        // two steps (prefill + first tokens), then the scheduler holds: the request cannot finish meanwhile
        f.server.scheduler().resumeFor(2);
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null && !line.contains("data: ")) {
            // status line, headers, chunk sizes
        }
        assertTrue(line != null && line.contains("\"text\""), "a first token arrived: " + line);
        return in;
    }

    @Test
    void aPromptThatDoesNotFitWaitsForRoom() throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withKvLimit(SLAB, SLAB))) {
            ServeFixture.Expected a = f.reference("Once upon a time", 20, 0, 1, 1);
            ServeFixture.Expected b = f.reference("Lily and Ben", 20, 0, 1, 1);
            f.server.scheduler().pause();
            List<JsonNode> answers = new ArrayList<>();
            try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
                Future<JsonNode> fa = pool.submit(() -> f.complete(
                        "{\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0,\"return_token_ids\":true}"));
                Future<JsonNode> fb = pool.submit(() -> f.complete(
                        "{\"prompt\":\"Lily and Ben\",\"max_tokens\":20,\"temperature\":0,\"return_token_ids\":true}"));
                while (f.server.metrics().waiting.get() < 2) {
                    Thread.sleep(1);
                }
                f.server.scheduler().resume();
                answers.add(fa.get());
                answers.add(fb.get());
            } finally {
                f.server.scheduler().resume();
            }
            assertArrayEquals(a.ids(), ServeFixture.tokenIds(answers.get(0)));
            assertArrayEquals(b.ids(), ServeFixture.tokenIds(answers.get(1)));
            String m = f.metrics();
            assertEquals(2, ServeFixture.metric(m, "kvslab_requests_total{outcome=\"ok\"}"));
            assertEquals(0, ServeFixture.metric(m, "kvslab_requests_total{outcome=\"failed\"}"));
            // never two at once: the second was admitted only after the first freed its 40 blocks
            assertEquals(1, ServeFixture.metric(m, "kvslab_decode_batch_peak"));
            assertEquals(40 << 10, ServeFixture.metric(m, "kvslab_kv_live_bytes_peak"));
            assertEquals(0, ServeFixture.metric(m, "kvslab_kv_live_bytes"));
        }
    }

    @Test
    void aRunningRequestOutOfMemoryFailsAndTheServerGoesOn() throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withKvLimit(SLAB, SLAB))) {
            // 33+ tokens need 80 blocks: the step that crosses the first block boundary finds no memory
            HttpResponse<String> r = f.post("{\"prompt\":\"Once upon a time\",\"max_tokens\":100,\"temperature\":0}");
            assertEquals(503, r.statusCode(), r.body());
            JsonNode e = ServeFixture.JSON.readTree(r.body()).path("error");
            assertEquals("kv_memory_exhausted", e.path("code").asText());
            assertTrue(e.path("message").asText().contains("KV memory limit exceeded"), r.body());
            // the 503 goes out while the failing step runs; the scheduler frees the sequence when it retires the
            // request at the end of that step, so wait for that (a liveness bound, not a timing claim)
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (f.server.liveKvBytes() != 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(0, f.server.liveKvBytes());
            ServeFixture.Expected alone = f.reference("Lily and Ben", 20, 0, 1, 1);
            JsonNode ok = f.complete("{\"prompt\":\"Lily and Ben\",\"max_tokens\":20,\"temperature\":0}");
            assertEquals(alone.text(), ok.path("choices").path(0).path("text").asText());
            String m = f.metrics();
            assertEquals(1, ServeFixture.metric(m, "kvslab_requests_total{outcome=\"failed\"}"));
            assertTrue(ServeFixture.metric(m, "kvslab_kv_reserved_bytes_peak") <= SLAB);
        }
    }

    @Test
    void aClientThatDisconnectsMidStreamFreesItsSequence() throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults())) {
            assertEquals(0, f.server.liveKvBytes());
            try (Socket s = new Socket("127.0.0.1", f.server.port())) {
                streamUntilTheFirstToken(f, s);
                f.server.scheduler().pause();
                assertTrue(f.server.liveKvBytes() > 0);
                assertEquals(1, f.server.metrics().running.get());
            }
            f.server.scheduler().resume();
            long deadline = System.nanoTime() + 20_000_000_000L;
            while ((f.server.liveKvBytes() != 0 || f.server.metrics().running.get() != 0) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(0, f.server.liveKvBytes());
            String m = f.metrics();
            assertEquals(1, ServeFixture.metric(m, "kvslab_requests_total{outcome=\"cancelled\"}"));
            assertEquals(0, ServeFixture.metric(m, "kvslab_requests_total{outcome=\"ok\"}"));
            assertTrue(ServeFixture.metric(m, "kvslab_tokens_generated_total") < 500);
        }
    }

    /**
     * Shutting the server down with a stream open ends that stream properly: an error event (scheduler_stopped),
     * then [DONE] and the end of the chunked body, instead of a connection cut in the middle.
     */
    @Test
    void shutdownEndsAnOpenStreamWithAnErrorEventAndDone() throws Exception {
        ServeFixture f = new ServeFixture(ServeConfig.defaults());
        try {
            try (Socket s = new Socket("127.0.0.1", f.server.port())) {
                s.setSoTimeout(20_000);
                BufferedReader in = streamUntilTheFirstToken(f, s);
                f.server.close();                    // with the request still running
                java.util.List<String> rest = new java.util.ArrayList<>();
                String line;
                while ((line = in.readLine()) != null) {
                    rest.add(line);
                }
                String all = String.join("\n", rest);
                assertTrue(all.contains("scheduler_stopped"), "an error event names the stop: " + all);
                assertTrue(all.contains("data: [DONE]"), "the stream ends with [DONE]: " + all);
                assertTrue(rest.contains("0"), "and the chunked body ends properly: " + all);
            }
        } finally {
            f.close();
        }
    }
}
