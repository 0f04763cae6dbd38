package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.bench.model.BatchAttention;
import io.kvslab.bench.model.BatchForward;
import io.kvslab.bench.model.StoreBatchAttention;
import io.kvslab.bench.serve.ServerMetrics.Phase;

import java.util.Arrays;
import java.util.List;

/**
 * One token for every decoding request as one {@link BatchForward#decode}: row t is its own token at its own position
 * with its own sequence; every projection is one matrix product over the rows and attention one
 * {@link Attention#decodeBatch} per layer over all the rows' sequences ({@link StoreBatchAttention}). Each row is then
 * sampled with its request's own sampler straight from the batch's logits, and handed to {@link Delivery}. A row's
 * arithmetic does not depend on the other rows. Holds the scratch of the largest batch; scheduler thread only.
 */
final class DecodeStep implements AutoCloseable {
    private final BatchForward forward;
    private final ServeStore kv;
    private final Delivery delivery;
    private final ServerMetrics metrics;
    private final int vocab;
    private final Attention attention;
    private final StoreBatchAttention batchAttention;
    private final BatchAttention timedAttention;
    private final float[] logits;
    private final int[] tokens;
    private final long[] positions;
    private final Sequence[] sequences;
    private final Job[] jobs;
    /** Per row: the exception of a row that failed this step (reused: cleared after each step). */
    private final RuntimeException[] failures;
    /** Attention nanos of the current step, summed by {@link #timedAttention}. */
    private long attentionNanos;

    DecodeStep(BatchForward forward, ServeStore kv, Delivery delivery, ServerMetrics metrics, int vocab,
               int decodeThreads) {
        this.forward = forward;
        this.kv = kv;
        this.delivery = delivery;
        this.metrics = metrics;
        this.vocab = vocab;
        int maxBatch = forward.maxBatch();
        this.attention = Attention.create(decodeThreads);   // all rows of a layer in one call
        this.batchAttention = new StoreBatchAttention(attention, kv.layout());
        this.timedAttention = (layer, q, k, v, pos, n, out, failed) -> {
            long t = System.nanoTime();
            try {
                batchAttention.attend(layer, q, k, v, pos, n, out, failed);
            } finally {
                attentionNanos += System.nanoTime() - t;
            }
        };
        this.logits = new float[Math.toIntExact((long) maxBatch * vocab)];   // fits: BatchForward's pass checked it
        this.tokens = new int[maxBatch];
        this.positions = new long[maxBatch];
        this.sequences = new Sequence[maxBatch];
        this.jobs = new Job[maxBatch];
        this.failures = new RuntimeException[maxBatch];
    }

    /** Decodes every decoding request of {@code running} by one token; {@code start} is when the phase began. */
    void run(List<Job> running, long start) {
        int n = 0;
        for (Job j : running) {
            if (!Requests.decoding(j)) {
                continue;
            }
            jobs[n] = j;
            tokens[n] = j.pendingToken;
            positions[n] = j.position;
            sequences[n] = j.sequence;
            n++;
        }
        if (n == 0) {
            return;
        }
        attentionNanos = 0;
        batchAttention.rows(sequences, n);
        forward.decode(tokens, positions, timedAttention, n, logits, failures);
        long t = System.nanoTime();
        metrics.addPhase(Phase.ATTENTION, attentionNanos);
        metrics.addPhase(Phase.MATMUL, (t - start) - attentionNanos);
        metrics.batchRows.add(n);
        metrics.peakBatch.accumulateAndGet(n, Math::max);
        long sampling = 0;
        for (int r = 0; r < n; r++) {
            Job j = jobs[r];
            RuntimeException failure = failures[r];
            jobs[r] = null;
            sequences[r] = null;
            failures[r] = null;
            if (failure != null) {
                if (failure instanceof MemoryLimitExceededException m) {
                    delivery.failMemory(j, m.getMessage());
                } else {
                    delivery.fail(j, 500, "server_error", "decode failed: " + failure.getMessage());
                }
                continue;
            }
            j.position++;
            publishDecoded(j);
            long s0 = System.nanoTime();
            int token = j.sampler.sample(logits, r * vocab);
            sampling += System.nanoTime() - s0;
            delivery.accept(j, token);
        }
        metrics.addPhase(Phase.SAMPLE, sampling);
        metrics.addPhase(Phase.DELIVER, System.nanoTime() - t - sampling);
    }

    /**
     * With a shared tier, a decode step that filled a block (the sequence holds {@code position} rows: the prompt
     * and the generated tokens fed so far) publishes the new full blocks, write-behind: the tier's queue copies the
     * rows and never waits. A request the pressure policy compressed or swapped is skipped (its rows may have
     * changed or its history is not known); the library checks each block again (never a compressed, evicted,
     * shifted or aliased one).
     */
    private void publishDecoded(Job j) {
        int tpb = kv.layout().tokensPerBlock();
        if (kv.shared == null || j.position % tpb != 0 || j.compressions > 0 || j.swaps > 0) {
            return;
        }
        int rows = Math.toIntExact(j.position);
        int[] prompt = j.request.promptTokens();
        if (rows <= prompt.length) {
            return;
        }
        int[] held = Arrays.copyOf(prompt, rows);
        System.arraycopy(j.generatedIds, 0, held, prompt.length, rows - prompt.length);
        kv.shared.decoded(j.sequence, held);
    }

    @Override
    public void close() {
        attention.close();
    }
}
