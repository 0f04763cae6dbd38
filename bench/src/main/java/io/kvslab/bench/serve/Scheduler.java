package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.KvCacheManager;
import io.kvslab.StoreStats;
import io.kvslab.bench.model.BatchForward;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.serve.ServerMetrics.Phase;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Continuous batching on one thread. Requests queue in {@link #submit}; each step (1) drops finished and cancelled
 * requests and frees their sequences ({@link Requests}), (2) reserves room for one more token of every decoding
 * request through the store's {@link KvCacheManager} and, where that fails, runs the {@link PressurePolicy}
 * (compress, swap, recompute: {@link PressureRelief}), (3) admits waiting requests in arrival order while the batch
 * has room and a reservation for the whole prompt succeeds ({@link Admission}, after a prefix-cache lookup with
 * {@code --prefix-cache}), (4) runs one prompt chunk of every request still prefilling ({@link PrefillStep}), (5) runs
 * one token for every decoding request as one {@link BatchForward#decode} (one matrix product per weight over the
 * batch, attention as one {@link Attention#decodeBatch} call per layer over all the rows' sequences) and samples each
 * row with the request's own sampler ({@link DecodeStep}); tokens and ends reach the HTTP threads through
 * {@link Delivery}.
 *
 * <p>A row's arithmetic does not depend on the other rows, so a request's tokens are those it gets alone (unless the
 * pressure policy compressed or recomputed it: counted on the job and in the metrics). Every append was reserved
 * before, so no append hits the limit. A request whose prompt does not fit waits; a recomputed one goes back to the
 * head of the queue and later prefills its prompt and the tokens it generated so far. Without a pressure policy, a
 * running request whose next token finds no room fails (HTTP 503, {@code kv_memory_exhausted}).
 */
final class Scheduler implements AutoCloseable {
    private final ServerMetrics metrics;
    private final ServeStore kv;
    private final Requests requests;
    private final Delivery delivery;
    private final SequenceCaches caches;
    private final PressureRelief relief;
    private final Admission admission;
    private final PrefillStep prefill;
    private final DecodeStep decode;
    private final Thread thread;
    /** Why the scheduler thread stopped on an error (null while it runs, or after a clean stop). */
    private volatile Throwable failure;
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile boolean closing;
    /** Steps the loop may still run before it holds (tests); -1 = no limit. Written by tests, counted down here. */
    private volatile int stepBudget = -1;
    private volatile boolean parked;

    Scheduler(LoadedModel model, ServeConfig config, ServerMetrics metrics) {
        this(model, config, metrics, null);
    }

    /** With {@code tiers} naming a Redis server and/or disk directory, prompts' prefix blocks are shared there. */
    Scheduler(LoadedModel model, ServeConfig config, ServerMetrics metrics, TierOptions tiers) {
        this.metrics = metrics;
        this.kv = new ServeStore(model, config, metrics, tiers);
        int vocab = model.model().config().vocabSize();
        this.requests = new Requests(kv.manager, metrics);
        this.delivery = new Delivery(model.tokenizer(), metrics, config.pressure() != null,
                config.streamInterval());
        this.caches = new SequenceCaches();
        this.relief = new PressureRelief(config, kv, requests, delivery, caches, metrics);
        this.admission = new Admission(config, kv, requests, delivery, caches, relief, vocab);
        BatchForward forward = new BatchForward(model.model(), config.matMul(), config.maxBatch(),
                config.prefillChunk());
        this.prefill = new PrefillStep(forward, kv, requests, delivery, metrics, vocab);
        this.decode = new DecodeStep(forward, kv, delivery, metrics, vocab, config.decodeThreads());
        this.thread = Thread.ofPlatform().name("kvslab-scheduler").unstarted(this::loop);
    }

    void start() {
        thread.start();
    }

    /**
     * Null while the scheduler runs; otherwise why no request can be served: the error it stopped on, or that it
     * was stopped (or never started).
     */
    String notServing() {
        Throwable f = failure;
        if (f != null) {
            return "the scheduler stopped on an error: " + f;
        }
        return thread.isAlive() && !closing ? null : "the scheduler is not running";
    }

    void submit(Job job) {
        metrics.waiting.incrementAndGet();
        requests.incoming.add(job);
        if (closing || !thread.isAlive()) {
            drainOnClose(); // nobody would ever answer it
        }
    }

    /** The shared prefix tier, or null (tests). */
    SharedPrefixes shared() {
        return kv.shared;
    }

    StoreStats storeStats() {
        return kv.store.stats();
    }

    /** Blocks promised to running requests and not yet allocated, in bytes. */
    long pendingKvBytes() {
        return kv.manager.usage().pendingBytes();
    }

    long limitBytes() {
        return kv.store.config().limitBytes();
    }

    /** Requests fetching their prefix blocks from the shared tier (tests). */
    int fetchingRequests() {
        return requests.fetching.size();
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
                if (requests.idle()) {
                    // idle, but for prefix fetches: look at them every millisecond
                    Job j = requests.incoming.poll(requests.fetching.isEmpty() ? 50 : 1, TimeUnit.MILLISECONDS);
                    if (j != null) {
                        requests.waiting.add(j);
                    } else if (requests.fetching.isEmpty()) {
                        continue;
                    }
                }
                step();
                if (stepBudget > 0) {
                    stepBudget--;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            // a bug, not a request's fault: fail everyone rather than leave HTTP threads waiting forever, and say so
            // on /health (a load balancer then takes this replica out)
            failure = e;
            delivery.failAll(requests, 500, "server_error", "scheduler_failed", "the scheduler stopped: " + e);
            throw e;
        } finally {
            drainOnClose();
        }
    }

    private void step() {
        long t0 = System.nanoTime();
        requests.incoming.drainTo(requests.waiting);
        requests.retire();
        admission.collectFetches();
        relief.reserveDecodeRoom();
        admission.admit();
        long t1 = System.nanoTime();
        metrics.addPhase(Phase.SCHEDULE, t1 - t0);
        if (requests.running.isEmpty()) {
            return;
        }
        metrics.steps.increment();
        prefill.run();
        long t2 = System.nanoTime();
        metrics.addPhase(Phase.PREFILL, t2 - t1);
        decode.run(requests.running, t2);
        long t5 = System.nanoTime();
        requests.retire();
        metrics.observeLive(kv.store.stats().liveBytes());
        metrics.pendingBytes.set(kv.manager.usage().pendingBytes());
        if (kv.prefixCache != null) {
            metrics.prefixHitBlocks.set(kv.prefixCache.stats().hitBlocks());
        }
        metrics.addPhase(Phase.SCHEDULE, System.nanoTime() - t5);
    }

    /** On shutdown: every request not done is told so; sequences are freed. */
    private synchronized void drainOnClose() {
        if (thread.isAlive() && Thread.currentThread() != thread) {
            return; // the scheduler thread drains on its way out
        }
        requests.incoming.drainTo(requests.waiting);
        delivery.failAll(requests, 503, "server_error", "scheduler_stopped", "the scheduler is not running (the server "
                + "is shutting down, or it stopped on an error)");
        for (Job j : requests.running) {
            requests.dropSequence(j);
        }
        requests.running.clear();
        relief.failSwapped();
        metrics.running.set(0);
        metrics.waiting.set(0);
    }

    /** Idempotent: the server's close runs it after a test (or an operator's tooling) may have. */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        closing = true;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        drainOnClose();
        admission.close();
        caches.close();
        decode.close();
        relief.close();
        kv.close();
    }
}
