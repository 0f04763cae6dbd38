package io.kvslab.bench.serve;

import io.kvslab.Sequence;
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
    /** Token events not handed to {@link #events} yet (a stream interval above 1 hands them over in groups). */
    final java.util.List<JobEvent> held = new java.util.ArrayList<>();
    KvCache cache;
    /** The store sequence behind {@link #cache} (null while waiting or swapped). */
    Sequence sequence;
    /** Tokens whose K/V the sequence holds once prefilled: the prompt, or after a recompute prompt + generated. */
    int[] context;
    /** Every generated token, in order (a recompute prefills them again). */
    int[] generatedIds = new int[16];
    /** The prefix blocks being fetched from the shared tier off the scheduler thread (null otherwise). */
    java.util.concurrent.Future<io.kvslab.tier.PrefixTier.Fetched> fetch;
    /** Fetched prefix blocks waiting for admission (null before a fetch and after admission). */
    io.kvslab.tier.PrefixTier.Fetched fetched;
    /** The swapped-out KV blocks while the request waits in the swap tier (null otherwise). */
    io.kvslab.tier.SwappedSequence swapped;
    /** Pressure decisions that touched this request (it is then exempt from the determinism check). */
    int compressions;
    int recomputes;
    int swaps;
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
        this.context = request.promptTokens();
    }

    void recordGenerated(int token) {
        if (generated == generatedIds.length) {
            generatedIds = java.util.Arrays.copyOf(generatedIds, generatedIds.length * 2);
        }
        generatedIds[generated] = token;
    }

    /** The tokens generated so far. */
    int[] generatedTokens() {
        return java.util.Arrays.copyOf(generatedIds, generated);
    }

    /** Set by a recompute: the prefill re-runs {@link #context} and does not sample (the next token is known). */
    boolean resumed;

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
        return prefilled < context.length;
    }
}
