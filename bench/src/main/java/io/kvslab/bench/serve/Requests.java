package io.kvslab.bench.serve;

import io.kvslab.KvCacheManager;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The requests of one scheduler by state, and the moves between states that keep the gauges
 * ({@code kvslab_sequences_running/waiting}) true. {@link #incoming} is filled by HTTP threads; everything else
 * belongs to the scheduler thread.
 */
final class Requests {
    /** Submitted by HTTP threads, drained into {@link #waiting} at the start of each step. */
    final LinkedBlockingQueue<Job> incoming = new LinkedBlockingQueue<>();
    /** Queued for admission, in arrival order (recomputed and fetched requests rejoin at the head). */
    final ArrayDeque<Job> waiting = new ArrayDeque<>();
    /** Waiting requests whose prefix blocks are being fetched from the shared tier, in the order they started. */
    final List<Job> fetching = new ArrayList<>();
    /** Admitted: prefilling or decoding. */
    final List<Job> running = new ArrayList<>();
    /** Requests whose KV blocks are in the swap tier, oldest first: swapped back in before new admissions. */
    final ArrayDeque<Job> swappedOut = new ArrayDeque<>();

    private final KvCacheManager manager;
    private final ServerMetrics metrics;

    Requests(KvCacheManager manager, ServerMetrics metrics) {
        this.manager = manager;
        this.metrics = metrics;
    }

    /** Nothing to step: no request running, queued or swapped out (fetches may still be in flight). */
    boolean idle() {
        return running.isEmpty() && waiting.isEmpty() && swappedOut.isEmpty();
    }

    /** Whether {@code j} decodes a token this step: admitted, prefilled, has a pending token, not done. */
    static boolean decoding(Job j) {
        return !j.finished && !j.cancelled() && !j.prefilling() && j.generated > 0;
    }

    /** Drops finished and cancelled requests, freeing their sequences. */
    void retire() {
        for (Iterator<Job> it = running.iterator(); it.hasNext(); ) {
            Job j = it.next();
            if (j.finished || j.cancelled()) {
                if (!j.finished) {
                    metrics.requestsCancelled.increment();
                }
                dropSequence(j);
                it.remove();
                metrics.running.decrementAndGet();
            }
        }
        for (Iterator<Job> it = waiting.iterator(); it.hasNext(); ) {
            Job j = it.next();
            if (j.cancelled()) {
                it.remove();
                metrics.waiting.decrementAndGet();
                metrics.requestsCancelled.increment();
            }
        }
        for (Iterator<Job> it = fetching.iterator(); it.hasNext(); ) {
            Job j = it.next();
            if (j.cancelled()) {
                it.remove();
                j.fetch.cancel(true);
                j.fetch = null;
                metrics.waiting.decrementAndGet();
                metrics.requestsCancelled.increment();
            }
        }
    }

    /** Admits {@code j} (already off the queue) into the batch. */
    void run(Job j) {
        running.add(j);
        metrics.running.incrementAndGet();
    }

    /** Takes {@code j} out of the batch and frees its sequence. */
    void stop(Job j) {
        running.remove(j);
        metrics.running.decrementAndGet();
        dropSequence(j);
    }

    /** Takes the head of the queue out of it (admitted, or failed). */
    void dequeue() {
        waiting.poll();
        metrics.waiting.decrementAndGet();
    }

    /** Puts {@code j} at the head of the queue (a recompute or a prompt that has to wait for room again). */
    void requeueFirst(Job j) {
        waiting.addFirst(j);
        metrics.waiting.incrementAndGet();
    }

    /** Prepares {@code j} to be recomputed: when readmitted it prefills its prompt and the tokens it generated. */
    static void resumeLater(Job j) {
        j.resumed = true;
        j.prefilled = 0;
        j.context = resumeContext(j);
    }

    /** Prompt and every generated token but the pending one (fed at the next decode): what the cache held. */
    private static int[] resumeContext(Job j) {
        int[] prompt = j.request.promptTokens();
        int[] ctx = Arrays.copyOf(prompt, prompt.length + j.generated - 1);
        System.arraycopy(j.generatedIds, 0, ctx, prompt.length, j.generated - 1);
        return ctx;
    }

    /** Closes a request's cache and sequence (its reservation lapses with it). */
    void dropSequence(Job j) {
        if (j.cache != null) {
            j.cache.close();
        }
        if (j.sequence != null) {
            manager.free(j.sequence);
        }
        j.cache = null;
        j.sequence = null;
    }
}
