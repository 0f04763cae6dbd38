package io.kvslab.bench.serve;

import io.kvslab.bench.model.Tokenizer;

/**
 * What the scheduler hands to the HTTP thread of each request ({@link Job#events}): a sampled token's text (held
 * back while it could still start a stop string or half a UTF-8 character), then one end: done, or failed with
 * OpenAI's error. Counts tokens and outcomes, and records time to first token and inter-token latency when the
 * token is produced. Scheduler thread only.
 *
 * <p>With a stream interval of N > 1 ({@code --stream-interval}, SGLang's option of that name), a request's token
 * events are held and handed over N at a time (the first token and the end at once): its HTTP thread then wakes,
 * writes and flushes once per N tokens instead of once per token, and so does the client reading the stream. The
 * tokens and their order are the same; only when they reach the client changes.
 */
final class Delivery {
    private final Tokenizer tokenizer;
    private final ServerMetrics metrics;
    /** Whether a pressure policy runs: a memory failure then means it could free nothing. */
    private final boolean pressure;
    /** Token events handed over at a time, {@code >= 1}. */
    private final int streamInterval;

    Delivery(Tokenizer tokenizer, ServerMetrics metrics, boolean pressure, int streamInterval) {
        this.tokenizer = tokenizer;
        this.metrics = metrics;
        this.pressure = pressure;
        this.streamInterval = streamInterval;
    }

    /** Hands {@code e} to the request's HTTP thread now, with any token events held before it. */
    static void send(Job j, JobEvent e) {
        if (!j.held.isEmpty()) {
            j.events.addAll(j.held);
            j.held.clear();
        }
        j.events.add(e);
    }

    /** A sampled token: BOS ends the completion (llama2.c's rule); otherwise it is text, and maybe the last token. */
    void accept(Job j, int token) {
        if (token == tokenizer.bos()) {
            finish(j, "stop");
            return;
        }
        j.recordGenerated(token);
        j.generated++;
        metrics.tokensGenerated.increment();
        long now = System.nanoTime();
        if (j.generated == 1) {
            metrics.timeToFirstToken.record(now - j.arrivalNanos);
        } else {
            metrics.interTokenLatency.record(now - j.lastTokenNanos);
        }
        j.lastTokenNanos = now;
        byte[] piece = tokenizer.decode(j.previousToken, token);
        j.previousToken = token;
        String delta = Tokenizer.printable(piece) ? j.text.add(piece) : "";
        JobEvent.Text event = new JobEvent.Text(delta, token);
        if (streamInterval == 1 || j.generated == 1 || j.held.size() + 1 >= streamInterval) {
            send(j, event);
        } else {
            j.held.add(event);
        }
        if (j.text.stopped()) {
            finish(j, "stop");
        } else if (j.generated == j.request.maxTokens()) {
            finish(j, "length");
        } else {
            j.pendingToken = token;
        }
    }

    private void finish(Job j, String reason) {
        String rest = j.text.finish();
        if (!rest.isEmpty()) {
            send(j, new JobEvent.Text(rest, -1));
        }
        j.finished = true;
        metrics.requestsOk.increment();
        send(j, new JobEvent.Done(reason, j.promptLength(), j.generated));
    }

    /** The request found no KV memory for its next rows (HTTP 503, {@code kv_memory_exhausted}). */
    void failMemory(Job j, String why) {
        fail(j, 503, "kv_memory_exhausted", "out of KV memory at position " + (j.prefilling() ? j.prefilled : j.position)
                + ": KV memory limit exceeded (" + why + ")" + (!pressure ? "; start the server with --pressure"
                + " to compress, swap or recompute sequences instead" : "; the pressure policy could free nothing"));
    }

    void fail(Job j, int status, String code, String message) {
        j.finished = true;
        metrics.requestsFailed.increment();
        send(j, new JobEvent.Failed(status, "server_error", code, message));
    }

    /** Fails every request not done yet: running, queued and fetching (a scheduler stopping). */
    void failAll(Requests requests, int status, String type, String code, String message) {
        for (Job j : requests.running) {
            if (!j.finished) {
                j.finished = true;
                metrics.requestsFailed.increment();
                send(j, new JobEvent.Failed(status, type, code, message));
            }
        }
        for (Job j : requests.waiting) {
            metrics.requestsFailed.increment();
            send(j, new JobEvent.Failed(status, type, code, message));
        }
        requests.waiting.clear();
        for (Job j : requests.fetching) {
            j.fetch.cancel(true);
            metrics.requestsFailed.increment();
            send(j, new JobEvent.Failed(status, type, code, message));
        }
        requests.fetching.clear();
    }
}
