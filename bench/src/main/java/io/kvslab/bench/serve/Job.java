package io.kvslab.bench.serve;

import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.Sampler;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One completion request on its way through the scheduler. The HTTP thread creates it and reads {@link #events};
 * it may set {@link #cancel()} (the client went away). Everything else belongs to the scheduler thread.
 */
final class Job {
    final CompletionRequest request;
    final long arrivalNanos;
    final BlockingQueue<JobEvent> events = new LinkedBlockingQueue<>();
    private volatile boolean cancelled;

    // scheduler thread only
    KvCache cache;
    Sampler sampler;
    CompletionText text;
    /** Prompt tokens already run through the model. */
    int prefilled;
    /** Position the pending token goes to. */
    long position;
    /** The last sampled token, fed at the next decode step. */
    int pendingToken;
    /** The token before the next one (decoding a piece depends on it). */
    int previousToken;
    int generated;
    long lastTokenNanos;
    boolean finished;

    Job(CompletionRequest request, long arrivalNanos) {
        this.request = request;
        this.arrivalNanos = arrivalNanos;
    }

    /** The client is gone: the scheduler drops the request at its next step and frees its sequence. */
    void cancel() {
        cancelled = true;
    }

    boolean cancelled() {
        return cancelled;
    }

    int promptLength() {
        return request.promptTokens().length;
    }

    boolean prefilling() {
        return prefilled < promptLength();
    }
}
