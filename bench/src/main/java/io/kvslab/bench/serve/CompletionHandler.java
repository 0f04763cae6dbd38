package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import io.kvslab.bench.model.LoadedModel;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code POST /v1/completions} on an HTTP virtual thread: reads and validates the body, queues a {@link Job}, then
 * writes what the scheduler produces, either as one JSON response or as server-sent events
 * ({@code data: {...}\n\n} chunks, then {@code data: [DONE]}). A streaming client that goes away makes the next write
 * fail; the job is then cancelled and the scheduler frees its sequence.
 */
final class CompletionHandler {
    private static final ObjectMapper JSON = ApiErrors.JSON;
    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

    private final RequestParser parser;
    private final String modelName;
    private final Scheduler scheduler;
    private final ServerMetrics metrics;
    private final AtomicLong ids = new AtomicLong();

    CompletionHandler(LoadedModel model, String modelName, Scheduler scheduler, ServerMetrics metrics) {
        this.parser = new RequestParser(model.tokenizer(), model.model().config().contextLength());
        this.modelName = modelName;
        this.scheduler = scheduler;
        this.metrics = metrics;
    }

    void handle(HttpExchange ex) throws IOException {
        long arrival = System.nanoTime();
        CompletionRequest request;
        try {
            request = parser.parse(readBody(ex));
        } catch (InvalidRequestException e) {
            metrics.requestsInvalid.increment();
            ApiErrors.send(ex, 400, "invalid_request_error", e.param(), null, e.getMessage());
            return;
        } finally {
            metrics.httpParseNanos.add(System.nanoTime() - arrival);
        }
        Job job = new Job(request, arrival);
        scheduler.submit(job);
        String id = "cmpl-" + ids.incrementAndGet();
        long created = System.currentTimeMillis() / 1000;
        try {
            if (request.stream()) {
                stream(ex, job, id, created);
            } else {
                whole(ex, job, id, created);
            }
        } catch (IOException e) {
            job.cancel(); // the client went away
            throw e;
        } catch (InterruptedException e) {
            job.cancel();
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The body, or an {@link InvalidRequestException} once it passes {@link CompletionServer#MAX_BODY_BYTES}. A body
     * refused for its size is still read and thrown away (never buffered) up to
     * {@link CompletionServer#DISCARD_LIMIT_BYTES}: closing a connection whose unread bytes sit in the socket makes
     * the kernel send a reset, which can reach the client before the 400 does. A body declared larger than that is
     * not read at all; the answer then closes the connection.
     */
    private static byte[] readBody(HttpExchange ex) throws IOException {
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        long n = -1;
        if (declared != null) {
            try {
                n = Long.parseLong(declared.trim());
            } catch (NumberFormatException e) {
                n = -1;
            }
        }
        if (n > CompletionServer.DISCARD_LIMIT_BYTES) {
            // Not even opened here: closing the body stream would make the JDK's server wait for bytes to drain.
            ex.getResponseHeaders().set("Connection", "close");
            throw tooLarge(n);
        }
        try (InputStream in = ex.getRequestBody()) {
            if (n > CompletionServer.MAX_BODY_BYTES) {
                discard(in, n);
                throw tooLarge(n);
            }
            byte[] b = in.readNBytes(CompletionServer.MAX_BODY_BYTES + 1);
            if (b.length > CompletionServer.MAX_BODY_BYTES) {
                if (discard(in, CompletionServer.DISCARD_LIMIT_BYTES - b.length) > 0) {
                    ex.getResponseHeaders().set("Connection", "close"); // still more: do not read it
                }
                throw new InvalidRequestException("the body is larger than the " + CompletionServer.MAX_BODY_BYTES
                        + " bytes this server reads", null);
            }
            return b;
        }
    }

    private static InvalidRequestException tooLarge(long declared) {
        return new InvalidRequestException("the body of " + declared + " bytes is larger than the "
                + CompletionServer.MAX_BODY_BYTES + " bytes this server reads", null);
    }

    /** Reads and drops up to {@code limit} bytes; returns how many more the body has (0, or 1 if it goes on). */
    private static int discard(InputStream in, long limit) throws IOException {
        long left = limit;
        while (left > 0) {
            long skipped = in.skip(left);
            if (skipped <= 0) {
                if (in.read() < 0) {
                    return 0;
                }
                skipped = 1;
            }
            left -= skipped;
        }
        return in.read() < 0 ? 0 : 1;
    }

    private void whole(HttpExchange ex, Job job, String id, long created) throws IOException, InterruptedException {
        StringBuilder text = new StringBuilder();
        ArrayNode tokens = JSON.createArrayNode();
        while (true) {
            JobEvent e = job.events.take();
            switch (e) {
                case JobEvent.Text t -> {
                    text.append(t.text());
                    if (t.token() >= 0) {
                        tokens.add(t.token());
                    }
                }
                case JobEvent.Failed f -> {
                    ApiErrors.send(ex, f.status(), f.type(), null, f.code(), f.message());
                    return;
                }
                case JobEvent.Done d -> {
                    ObjectNode root = envelope(id, created);
                    ObjectNode choice = root.putArray("choices").addObject();
                    choice.put("text", text.toString());
                    choice.put("index", 0);
                    choice.putNull("logprobs");
                    choice.put("finish_reason", d.finishReason());
                    if (job.request.returnTokenIds()) {
                        choice.set("token_ids", tokens);
                    }
                    usage(root, d);
                    byte[] b = JSON.writeValueAsBytes(root);
                    long t = System.nanoTime();
                    ex.getResponseHeaders().set("Content-Type", "application/json");
                    ex.sendResponseHeaders(200, b.length);
                    try (OutputStream out = ex.getResponseBody()) {
                        out.write(b);
                    }
                    metrics.httpWriteNanos.add(System.nanoTime() - t);
                    return;
                }
            }
        }
    }

    private void stream(HttpExchange ex, Job job, String id, long created) throws IOException, InterruptedException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream");
        ex.getResponseHeaders().set("Cache-Control", "no-cache");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        TokenChunks chunks = new TokenChunks(id, created, modelName);
        ByteArrayOutputStream pending = new ByteArrayOutputStream(512);
        while (true) {
            JobEvent e = job.events.take();
            long t = System.nanoTime();
            // every event already queued goes out in one write and one flush: a thread woken late (the scheduler
            // ran several steps meanwhile) catches up without a system call per token
            while (e != null) {
                switch (e) {
                    case JobEvent.Text tx -> {
                        boolean ids = job.request.returnTokenIds() && tx.token() >= 0;
                        if (!tx.text().isEmpty() || ids) {
                            chunks.write(pending, tx.text(), ids ? tx.token() : -1);
                        }
                    }
                    case JobEvent.Failed f -> {
                        pending.writeBytes(eventBytes(ApiErrors.body(f.type(), null, f.code(), f.message())));
                        pending.writeBytes(DONE);
                        out.write(pending.toByteArray());
                        out.close();
                        return;
                    }
                    case JobEvent.Done d -> {
                        pending.writeBytes(eventBytes(chunk(id, created, "", d.finishReason())));
                        if (job.request.includeUsage()) {
                            ObjectNode root = envelope(id, created);
                            root.putArray("choices");
                            usage(root, d);
                            pending.writeBytes(eventBytes(root));
                        }
                        pending.writeBytes(DONE);
                        out.write(pending.toByteArray());
                        out.close();
                        metrics.httpWriteNanos.add(System.nanoTime() - t);
                        return;
                    }
                }
                e = job.events.poll();
            }
            if (pending.size() > 0) {
                out.write(pending.toByteArray());
                out.flush();
                pending.reset();
            }
            metrics.httpWriteNanos.add(System.nanoTime() - t);
        }
    }

    private static byte[] eventBytes(ObjectNode json) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream(256);
        b.writeBytes("data: ".getBytes(StandardCharsets.US_ASCII));
        b.writeBytes(JSON.writeValueAsBytes(json));
        b.writeBytes("\n\n".getBytes(StandardCharsets.US_ASCII));
        return b.toByteArray();
    }

    /**
     * A stream's token chunks, byte for byte what serialising {@link #chunk} (plus {@code token_ids}) gives, from a
     * prefix and suffix made once per request: per token only the text is JSON-escaped (the hot path of a stream).
     */
    static final class TokenChunks {
        private final byte[] head;
        private static final byte[] TAIL = ",\"index\":0,\"logprobs\":null,\"finish_reason\":null"
                .getBytes(StandardCharsets.US_ASCII);
        private static final byte[] IDS = ",\"token_ids\":[".getBytes(StandardCharsets.US_ASCII);
        private static final byte[] END = "}]}\n\n".getBytes(StandardCharsets.US_ASCII);

        TokenChunks(String id, long created, String model) throws IOException {
            String h = "data: {\"id\":" + JSON.writeValueAsString(id) + ",\"object\":\"text_completion\",\"created\":"
                    + created + ",\"model\":" + JSON.writeValueAsString(model) + ",\"choices\":[{\"text\":";
            this.head = h.getBytes(StandardCharsets.UTF_8);
        }

        /** Appends one chunk with {@code text}, and {@code token_ids: [token]} when {@code token >= 0}. */
        void write(ByteArrayOutputStream b, String text, int token) throws IOException {
            b.writeBytes(head);
            b.writeBytes(JSON.writeValueAsBytes(text));
            b.writeBytes(TAIL);
            if (token >= 0) {
                b.writeBytes(IDS);
                b.writeBytes(Integer.toString(token).getBytes(StandardCharsets.US_ASCII));
                b.write(']');
            }
            b.writeBytes(END);
        }
    }

    private ObjectNode chunk(String id, long created, String text, String finishReason) {
        ObjectNode root = envelope(id, created);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("text", text);
        choice.put("index", 0);
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason);
        return root;
    }

    private ObjectNode envelope(String id, long created) {
        ObjectNode root = JSON.createObjectNode();
        root.put("id", id);
        root.put("object", "text_completion");
        root.put("created", created);
        root.put("model", modelName);
        return root;
    }

    private static void usage(ObjectNode root, JobEvent.Done d) {
        ObjectNode u = root.putObject("usage");
        u.put("prompt_tokens", d.promptTokens());
        u.put("completion_tokens", d.completionTokens());
        u.put("total_tokens", d.promptTokens() + d.completionTokens());
    }
}
