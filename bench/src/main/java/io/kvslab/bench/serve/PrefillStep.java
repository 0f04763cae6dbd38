package io.kvslab.bench.serve;

import io.kvslab.KvSlabException;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.bench.model.BatchForward;

import java.util.ArrayList;
import java.util.List;

/**
 * One prompt chunk (up to {@link BatchForward#chunk()} tokens) of every admitted request still prefilling, the same
 * {@code ForwardPass.run} path {@code kvslab generate} uses; after a prompt's last chunk its first token is sampled
 * (time to first token) and its full blocks go into the prefix cache. A recomputed request's last chunk samples
 * nothing: its next token is already known. Scheduler thread only.
 */
final class PrefillStep {
    private final BatchForward forward;
    private final ServeStore kv;
    private final Requests requests;
    private final Delivery delivery;
    private final ServerMetrics metrics;
    private final float[] logits;
    /** Requests whose chunk found no memory while others ran: back to the queue after the loop. */
    private final List<Job> requeue = new ArrayList<>();

    PrefillStep(BatchForward forward, ServeStore kv, Requests requests, Delivery delivery, ServerMetrics metrics,
                int vocab) {
        this.forward = forward;
        this.kv = kv;
        this.requests = requests;
        this.delivery = delivery;
        this.metrics = metrics;
        this.logits = new float[vocab];
    }

    void run() {
        requeue.clear();
        for (Job j : requests.running) {
            if (!j.prefilling() || j.finished || j.cancelled()) {
                continue;
            }
            int[] prompt = j.context;
            int n = Math.min(forward.chunk(), prompt.length - j.prefilled);
            boolean last = j.prefilled + n == prompt.length;
            boolean sample = last && !j.resumed;
            try {
                forward.prefill(prompt, j.prefilled, n, j.prefilled, j.cache, sample ? logits : null);
            } catch (MemoryLimitExceededException e) {
                if (requests.running.size() > 1) {
                    requeue.add(j); // a sequence outside the reservations took the room: wait for room again
                } else {
                    delivery.failMemory(j, e.getMessage());
                }
                continue;
            } catch (KvSlabException | IllegalArgumentException e) {
                delivery.fail(j, 500, "server_error", "prefill failed: " + e.getMessage());
                continue;
            }
            j.prefilled += n;
            (j.resumed ? metrics.recomputedTokens : metrics.promptTokens).add(n);
            if (last && j.resumed) {
                continue; // prompt and generated tokens are back: it decodes its pending token this step
            }
            if (last) {
                if (kv.shared != null) {
                    kv.shared.prefilled(j.sequence, prompt);   // local insert and write-behind to the tier
                } else if (kv.prefixCache != null) {
                    kv.prefixCache.insert(j.sequence, prompt, kv.prefixSalt);
                }
                j.position = prompt.length;
                j.previousToken = prompt[prompt.length - 1];
                delivery.accept(j, j.sampler.sample(logits));
            }
        }
        requeueOutOfMemory();
    }

    /** Prompts that ran out of memory while others were running go back to the head of the queue, their rows freed. */
    private void requeueOutOfMemory() {
        for (int i = requeue.size() - 1; i >= 0; i--) {
            Job j = requeue.get(i);
            requests.stop(j);
            j.prefilled = 0;
            requests.requeueFirst(j);
        }
        requeue.clear();
    }
}
