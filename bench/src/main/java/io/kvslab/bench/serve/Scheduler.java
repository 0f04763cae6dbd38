package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;
import io.kvslab.bench.model.BatchAttention;
import io.kvslab.bench.model.BatchForward;
import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.StoreBatchAttention;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.bench.model.Tokenizer;
import io.kvslab.bench.serve.ServerMetrics.Phase;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Continuous batching on one thread. Requests queue in {@link #submit}; each step (1) drops finished and cancelled
 * requests and frees their sequences, (2) admits waiting requests in arrival order while the batch has room and the
 * store has room for the next one's prompt, (3) runs one prompt chunk of every request still prefilling, (4) runs one
 * token for every decoding request as one {@link BatchForward#decode} (one matrix product per weight over the batch,
 * attention as one {@link Attention#decodeBatch} call per layer over all the rows' sequences), then samples each row
 * with the request's own sampler.
 *
 * <p>A row's arithmetic does not depend on the other rows, so a request's tokens are those it gets alone. A request
 * whose prompt does not fit waits (also when its prefill runs out of memory while other sequences run: it is freed
 * and queued again at the head); a running request whose next token finds no KV memory fails (HTTP 503,
 * {@code kv_memory_exhausted}); nothing is compressed or swapped yet.
 */
final class Scheduler implements AutoCloseable {
    private final LoadedModel model;
    private final ServeConfig config;
    private final ServerMetrics metrics;
    private final KvStore store;
    private final Attention attention;
    /** The decode step's kernel: all rows of a layer in one call, split across this many threads. */
    private static final int DECODE_THREADS = 2;
    private final Attention decodeAttention;
    private final StoreBatchAttention batchAttention;
    private final BatchAttention timedBatchAttention;
    private final BatchForward forward;
    private final LinkedBlockingQueue<Job> incoming = new LinkedBlockingQueue<>();
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final List<Job> running = new ArrayList<>();
    private final List<Job> requeue = new ArrayList<>();
    private final Thread thread;
    private final int vocab;
    private final float[] rowLogits;
    private final float[] batchLogits;
    private final int[] batchTokens;
    private final long[] batchPositions;
    private final Sequence[] batchSequences;
    private final Job[] batchJobs;
    /** Attention nanos of the current decode, summed by the timed caches. */
    private final long[] attentionNanos = new long[1];
    private volatile boolean closing;
    /** Steps the loop may still run before it holds (tests); -1 = no limit. Written by tests, counted down here. */
    private volatile int stepBudget = -1;
    private volatile boolean parked;

    Scheduler(LoadedModel model, ServeConfig config, ServerMetrics metrics) {
        this.model = model;
        this.config = config;
        this.metrics = metrics;
        ModelConfig c = model.model().config();
        KvLayout layout = StoreKvCache.layout(c, DType.F32);
        this.store = KvStore.open(layout, new StoreConfig(config.kvLimitBytes(), slabBytes(config, layout, c)));
        this.attention = Attention.create(1);
        this.decodeAttention = Attention.create(DECODE_THREADS);
        this.batchAttention = new StoreBatchAttention(decodeAttention, layout);
        this.timedBatchAttention = (layer, q, k, v, positions, n, out, failures) -> {
            long t = System.nanoTime();
            try {
                batchAttention.attend(layer, q, k, v, positions, n, out, failures);
            } finally {
                attentionNanos[0] += System.nanoTime() - t;
            }
        };
        this.forward = new BatchForward(model.model(), config.matMul(), config.maxBatch(), config.prefillChunk());
        this.vocab = c.vocabSize();
        this.rowLogits = new float[vocab];
        this.batchLogits = new float[config.maxBatch() * vocab];
        this.batchTokens = new int[config.maxBatch()];
        this.batchPositions = new long[config.maxBatch()];
        this.batchSequences = new Sequence[config.maxBatch()];
        this.batchJobs = new Job[config.maxBatch()];
        this.thread = Thread.ofPlatform().name("kvslab-scheduler").unstarted(this::loop);
    }

    /** The given slab size, else one that holds four whole-context sequences (at most the library default). */
    private static long slabBytes(ServeConfig config, KvLayout layout, ModelConfig c) {
        if (config.slabBytes() > 0) {
            return config.slabBytes();
        }
        long perContext = Math.multiplyExact(bytesFor(layout, c.contextLength()), 4L);
        return Math.max(layout.blockBytes(), Math.min(StoreConfig.DEFAULT_SLAB_BYTES, perContext));
    }

    /** Block bytes a sequence of {@code tokens} rows takes in every layer and KV head, keys and values. */
    static long bytesFor(KvLayout layout, long tokens) {
        long blocks = (tokens + layout.tokensPerBlock() - 1) / layout.tokensPerBlock();
        long perBlockRow = Math.multiplyExact((long) layout.layers() * layout.kvHeads() * 2, layout.blockBytes());
        return Math.multiplyExact(blocks, perBlockRow);
    }

    void start() {
        thread.start();
    }

    void submit(Job job) {
        metrics.waiting.incrementAndGet();
        incoming.add(job);
        if (closing || !thread.isAlive()) {
            drainOnClose(); // nobody would ever answer it
        }
    }

    StoreStats storeStats() {
        return store.stats();
    }

    long limitBytes() {
        return store.config().limitBytes();
    }

    /**
     * Holds the scheduler between two steps until {@link #resume()} (tests use it to queue requests that must join
     * the same step); returns once no step is running.
     */
    void pause() throws InterruptedException {
        parked = false;
        stepBudget = 0;
        while (!parked && thread.isAlive() && !closing) {
            Thread.sleep(1);
        }
    }

    void resume() {
        stepBudget = -1;
    }

    /** Lets the scheduler run {@code steps} more steps, then holds it again (tests). */
    void resumeFor(int steps) {
        parked = false;
        stepBudget = steps;
    }

    private void loop() {
        try {
            while (!closing) {
                if (stepBudget == 0) {
                    parked = true;
                    Thread.sleep(1);
                    continue;
                }
                if (running.isEmpty() && waiting.isEmpty()) {
                    Job j = incoming.poll(50, TimeUnit.MILLISECONDS);
                    if (j == null) {
                        continue;
                    }
                    waiting.add(j);
                }
                step();
                if (stepBudget > 0) {
                    stepBudget--;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            // a bug, not a request's fault: fail everyone rather than leave HTTP threads waiting forever
            failAll(500, "server_error", "scheduler_failed", "the scheduler stopped: " + e);
            throw e;
        } finally {
            drainOnClose();
        }
    }

    private void step() {
        long t0 = System.nanoTime();
        incoming.drainTo(waiting);
        retire();
        admit();
        long t1 = System.nanoTime();
        metrics.addPhase(Phase.SCHEDULE, t1 - t0);
        if (running.isEmpty()) {
            return;
        }
        metrics.steps.increment();
        prefillChunks();
        requeuePrefills();
        long t2 = System.nanoTime();
        metrics.addPhase(Phase.PREFILL, t2 - t1);
        decodeBatch(t2);
        long t5 = System.nanoTime();
        retire();
        metrics.observeLive(store.stats().liveBytes());
        metrics.addPhase(Phase.SCHEDULE, System.nanoTime() - t5);
    }

    /** Drops finished and cancelled requests, freeing their sequences. */
    private void retire() {
        for (Iterator<Job> it = running.iterator(); it.hasNext(); ) {
            Job j = it.next();
            if (j.finished || j.cancelled()) {
                if (!j.finished) {
                    metrics.requestsCancelled.increment();
                }
                j.cache.close();
                j.cache = null;
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
    }

    /** Admits waiting requests in arrival order while the batch has room and the store has room for the prompt. */
    private void admit() {
        KvLayout layout = store.layout();
        while (!waiting.isEmpty() && running.size() < config.maxBatch()) {
            Job j = waiting.peek();
            long need = bytesFor(layout, j.promptLength());
            if (need > available() - promptBytesPending(layout)) {
                if (running.isEmpty() && store.stats().liveBytes() == 0) {
                    waiting.poll();
                    metrics.waiting.decrementAndGet();
                    fail(j, 503, "kv_memory_exhausted", "the prompt needs " + need + " bytes of KV memory; the "
                            + "--kv-limit of " + limitBytes() + " bytes cannot hold it even with nothing else running");
                    continue;
                }
                return; // head-of-line waits: later requests do not overtake it
            }
            waiting.poll();
            metrics.waiting.decrementAndGet();
            Sequence s = store.newSequence();
            j.cache = new TimedCache(new StoreKvCache(s, new SharedAttention(attention)), attentionNanos);
            j.sampler = new Sampler(vocab, j.request.temperature(), j.request.topP(), j.request.seed());
            j.text = new CompletionText(j.request.stops());
            running.add(j);
            metrics.running.incrementAndGet();
        }
    }

    /** Bytes the prompts of admitted requests still prefilling will take. */
    private long promptBytesPending(KvLayout layout) {
        long sum = 0;
        for (Job j : running) {
            if (j.prefilling() && !j.finished) {
                sum += bytesFor(layout, j.promptLength()) - bytesFor(layout, j.prefilled);
            }
        }
        return sum;
    }

    /** KV bytes the store can still hand out: free blocks in reserved slabs plus the slabs the limit still allows. */
    private long available() {
        StoreStats s = store.stats();
        long limit = limitBytes();
        if (limit == Long.MAX_VALUE) {
            return Long.MAX_VALUE;
        }
        long slab = store.config().slabBytes();
        long blockBytes = store.layout().blockBytes();
        long slabUsable = slab / blockBytes * blockBytes;
        long slabsLeft = Math.max(0, limit - s.reservedBytes()) / slab;
        return (s.reservedBytes() - s.liveBytes()) + slabsLeft * slabUsable;
    }

    private void prefillChunks() {
        requeue.clear();
        for (Job j : running) {
            if (!j.prefilling() || j.finished || j.cancelled()) {
                continue;
            }
            int[] prompt = j.request.promptTokens();
            int n = Math.min(forward.chunk(), prompt.length - j.prefilled);
            boolean last = j.prefilled + n == prompt.length;
            try {
                forward.prefill(prompt, j.prefilled, n, j.prefilled, j.cache, last ? rowLogits : null);
            } catch (MemoryLimitExceededException e) {
                if (running.size() > 1) {
                    requeue.add(j); // admission guessed wrong (other sequences grew meanwhile): wait for room again
                } else {
                    failMemory(j, e);
                }
                continue;
            } catch (KvSlabException | IllegalArgumentException e) {
                fail(j, 500, "server_error", "prefill failed: " + e.getMessage());
                continue;
            }
            j.prefilled += n;
            metrics.promptTokens.add(n);
            if (last) {
                j.position = prompt.length;
                j.previousToken = prompt[prompt.length - 1];
                accept(j, j.sampler.sample(rowLogits));
            }
        }
    }

    /** Prompts that ran out of memory while others were running go back to the head of the queue, their rows freed. */
    private void requeuePrefills() {
        for (int i = requeue.size() - 1; i >= 0; i--) {
            Job j = requeue.get(i);
            running.remove(j);
            metrics.running.decrementAndGet();
            j.cache.close();
            j.cache = null;
            j.prefilled = 0;
            waiting.addFirst(j);
            metrics.waiting.incrementAndGet();
        }
        requeue.clear();
    }

    private void decodeBatch(long t2) {
        int n = 0;
        for (Job j : running) {
            if (j.finished || j.cancelled() || j.prefilling() || j.generated == 0) {
                continue;
            }
            batchJobs[n] = j;
            batchTokens[n] = j.pendingToken;
            batchPositions[n] = j.position;
            batchSequences[n] = ((StoreKvCache) ((TimedCache) j.cache).cache()).sequence();
            n++;
        }
        if (n == 0) {
            return;
        }
        RuntimeException[] failures = new RuntimeException[n];
        attentionNanos[0] = 0;
        batchAttention.rows(batchSequences, n);
        forward.decode(batchTokens, batchPositions, timedBatchAttention, n, batchLogits, failures);
        long t3 = System.nanoTime();
        metrics.addPhase(Phase.ATTENTION, attentionNanos[0]);
        metrics.addPhase(Phase.MATMUL, (t3 - t2) - attentionNanos[0]);
        metrics.batchRows.add(n);
        metrics.peakBatch.accumulateAndGet(n, Math::max);
        for (int t = 0; t < n; t++) {
            Job j = batchJobs[t];
            batchJobs[t] = null;
            batchSequences[t] = null;
            if (failures[t] != null) {
                if (failures[t] instanceof MemoryLimitExceededException m) {
                    failMemory(j, m);
                } else {
                    fail(j, 500, "server_error", "decode failed: " + failures[t].getMessage());
                }
                continue;
            }
            System.arraycopy(batchLogits, t * vocab, rowLogits, 0, vocab);
            j.position++;
            accept(j, j.sampler.sample(rowLogits));
        }
        metrics.addPhase(Phase.SAMPLE, System.nanoTime() - t3);
    }

    /** A sampled token: BOS ends the completion (llama2.c's rule); otherwise it is text, and maybe the last token. */
    private void accept(Job j, int token) {
        Tokenizer tok = model.tokenizer();
        if (token == tok.bos()) {
            finish(j, "stop");
            return;
        }
        j.generated++;
        metrics.tokensGenerated.increment();
        long now = System.nanoTime();
        if (j.generated == 1) {
            metrics.timeToFirstToken.record(now - j.arrivalNanos);
        } else {
            metrics.interTokenLatency.record(now - j.lastTokenNanos);
        }
        j.lastTokenNanos = now;
        byte[] piece = tok.decode(j.previousToken, token);
        j.previousToken = token;
        String delta = Tokenizer.printable(piece) ? j.text.add(piece) : "";
        j.events.add(new JobEvent.Text(delta, token));
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
            j.events.add(new JobEvent.Text(rest, -1));
        }
        j.finished = true;
        metrics.requestsOk.increment();
        j.events.add(new JobEvent.Done(reason, j.promptLength(), j.generated));
    }

    private void failMemory(Job j, MemoryLimitExceededException e) {
        fail(j, 503, "kv_memory_exhausted", "out of KV memory at position " + (j.prefilling() ? j.prefilled : j.position)
                + ": " + e.getMessage() + " (this server does not compress or swap sequences under pressure yet)");
    }

    private void fail(Job j, int status, String code, String message) {
        j.finished = true;
        metrics.requestsFailed.increment();
        j.events.add(new JobEvent.Failed(status, "server_error", code, message));
    }

    private void failAll(int status, String type, String code, String message) {
        for (Job j : running) {
            if (!j.finished) {
                j.finished = true;
                metrics.requestsFailed.increment();
                j.events.add(new JobEvent.Failed(status, type, code, message));
            }
        }
        for (Job j : waiting) {
            metrics.requestsFailed.increment();
            j.events.add(new JobEvent.Failed(status, type, code, message));
        }
        waiting.clear();
    }

    /** On shutdown: every request not done is told so; sequences are freed. */
    private synchronized void drainOnClose() {
        if (thread.isAlive() && Thread.currentThread() != thread) {
            return; // the scheduler thread drains on its way out
        }
        incoming.drainTo(waiting);
        failAll(503, "server_error", "scheduler_stopped", "the scheduler is not running (the server is shutting down,"
                + " or it stopped on an error)");
        for (Job j : running) {
            if (j.cache != null) {
                j.cache.close();
                j.cache = null;
            }
        }
        running.clear();
        metrics.running.set(0);
        metrics.waiting.set(0);
    }

    @Override
    public void close() {
        closing = true;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        drainOnClose();
        attention.close();
        decodeAttention.close();
        store.close();
    }

    /** The one attention kernel every request's cache uses (one thread calls it); closed by the scheduler only. */
    private record SharedAttention(Attention kernel) implements SequenceAttention {
        @Override
        public void decode(Sequence s, int layer, float[] q, float[] out) {
            kernel.decode(s, layer, q, out);
        }

        @Override
        public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
            kernel.prefill(s, layer, q, n, out);
        }

        @Override
        public void close() {
        }
    }

    /** Sums the time a cache spends appending and attending (the decode's attention phase). */
    private record TimedCache(KvCache cache, long[] nanos) implements KvCache {
        @Override
        public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out) {
            long t = System.nanoTime();
            try {
                cache.attend(layer, q, k, v, positions, n, out);
            } finally {
                nanos[0] += System.nanoTime() - t;
            }
        }

        @Override
        public void close() {
            cache.close();
        }
    }
}
