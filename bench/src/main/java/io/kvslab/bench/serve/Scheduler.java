package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvCacheManager;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;
import io.kvslab.bench.model.BatchAttention;
import io.kvslab.bench.model.BatchForward;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.StoreBatchAttention;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.bench.model.Tokenizer;
import io.kvslab.bench.serve.ServerMetrics.Phase;
import io.kvslab.policy.PressurePolicy;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.PrefixTier;
import io.kvslab.tier.SwappedSequence;

import java.util.ArrayDeque;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Continuous batching on one thread. Requests queue in {@link #submit}; each step (1) drops finished and cancelled
 * requests and frees their sequences, (2) reserves room for one more token of every decoding request through the
 * store's {@link KvCacheManager} and, where that fails, runs the {@link PressurePolicy} (compress, swap, recompute),
 * (3) admits waiting requests in arrival order while the batch has room and a reservation for the whole prompt
 * succeeds (after a prefix-cache lookup with {@code --prefix-cache}), (4) runs one prompt chunk of every request still
 * prefilling, (5) runs one token for every decoding request as one {@link BatchForward#decode} (one matrix product
 * per weight over the batch, attention as one {@link Attention#decodeBatch} call per layer over all the rows'
 * sequences), then samples each row with the request's own sampler.
 *
 * <p>A row's arithmetic does not depend on the other rows, so a request's tokens are those it gets alone (unless the
 * pressure policy compressed or recomputed it: counted on the job and in the metrics). Every append was reserved
 * before, so no append hits the limit. A request whose prompt does not fit waits; a recomputed one goes back to the
 * head of the queue and later prefills its prompt and the tokens it generated so far. Without a pressure policy, a
 * running request whose next token finds no room fails (HTTP 503, {@code kv_memory_exhausted}).
 */
final class Scheduler implements AutoCloseable {
    private final LoadedModel model;
    private final ServeConfig config;
    private final ServerMetrics metrics;
    private final KvStore store;
    private final KvCacheManager manager;
    /** Null without {@code --prefix-cache}. */
    private final PrefixCache prefixCache;
    /** Null without {@code --remote-tier} / {@code --disk-tier}; with one, prefixCache is on too. */
    private final SharedPrefixes shared;
    /** The salt of every local prefix-cache lookup and insert (the shared tier's when there is one). */
    private final long prefixSalt;
    /** Null without {@code --pressure}. */
    private final PressurePolicy pressure;
    /** Where {@code swap} puts sequences (a disk tier in a temporary directory); null without swap. */
    private final DiskTier swapTier;
    /** Handles of the sequences the policy swapped out during the current relief, by sequence. */
    private final Map<Sequence, SwappedSequence> justSwapped = new IdentityHashMap<>();
    /** Requests whose KV blocks are in the swap tier, oldest first: swapped back in before new admissions. */
    private final ArrayDeque<Job> swappedOut = new ArrayDeque<>();
    private final Attention attention;
    private final Attention decodeAttention;
    private final StoreBatchAttention batchAttention;
    private final BatchAttention timedBatchAttention;
    private final BatchForward forward;
    private final LinkedBlockingQueue<Job> incoming = new LinkedBlockingQueue<>();
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    /** Waiting requests whose prefix blocks are being fetched from the shared tier, in the order they started. */
    private final List<Job> fetching = new ArrayList<>();
    /** Runs the shared tier's fetches (network and verification) off this thread; null without a shared tier. */
    private final ExecutorService fetcher;
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
        this(model, config, metrics, null);
    }

    /** With {@code tiers} naming a Redis server and/or disk directory, prompts' prefix blocks are shared there. */
    Scheduler(LoadedModel model, ServeConfig config, ServerMetrics metrics, TierOptions tiers) {
        this.model = model;
        this.config = config;
        this.metrics = metrics;
        ModelConfig c = model.model().config();
        KvLayout layout = StoreKvCache.layout(c, DType.F32);
        this.store = KvStore.open(layout, new StoreConfig(config.kvLimitBytes(), slabBytes(config, layout, c)));
        this.manager = KvCacheManager.of(store);
        boolean tiered = tiers != null && tiers.any();
        this.prefixCache = config.prefixCache() || tiered ? PrefixCache.create(store) : null;
        manager.usePrefixCache(prefixCache);
        try {
            this.shared = tiered ? SharedPrefixes.open(tiers, store, prefixCache, modelId(tiers, model)) : null;
        } catch (RuntimeException e) {
            prefixCache.close();
            store.close();
            throw e;
        }
        this.prefixSalt = shared == null ? 0 : shared.localSalt();
        this.fetcher = shared == null ? null
                : Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("kvslab-prefix-fetch-", 0).factory());
        if (shared != null) {
            metrics.extra = shared::render;
        }
        this.swapTier = config.pressure() != null && config.pressure().toLowerCase(java.util.Locale.ROOT)
                .matches("(^|.*,)\\s*swap\\s*(,.*|$)") ? openSwapTier() : null;
        this.pressure = config.pressure() == null ? null : PressurePolicy.parse(config.pressure(), swapTier == null
                ? null : this::swapOut);
        this.attention = Attention.create(1);
        this.decodeAttention = Attention.create(config.decodeThreads());   // all rows of a layer in one call
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

    /** A disk tier in a fresh temporary directory (removed on close), capped at 4 GiB. */
    private static DiskTier openSwapTier() {
        try {
            return DiskTier.open(Files.createTempDirectory("kvslab-swap"), 4L << 30);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the swap directory", e);
        }
    }

    /** The pressure policy's swapper: writes the sequence to the tier (which frees it) and keeps the handle. */
    private boolean swapOut(Sequence s) {
        try {
            justSwapped.put(s, s.swapOut(swapTier));
            return true;
        } catch (KvSlabException e) {
            return false; // the tier declined (full, unwritable): the sequence is unchanged, try the next action
        }
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

    private static String modelId(TierOptions tiers, LoadedModel model) {
        return tiers.modelId() != null ? tiers.modelId() : SharedPrefixes.modelId(model);
    }

    /** The shared prefix tier, or null (tests). */
    SharedPrefixes shared() {
        return shared;
    }

    StoreStats storeStats() {
        return store.stats();
    }

    /** Blocks promised to running requests and not yet allocated, in bytes. */
    long pendingKvBytes() {
        return manager.usage().pendingBytes();
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
                if (running.isEmpty() && waiting.isEmpty() && swappedOut.isEmpty()) {
                    // idle, but for prefix fetches: look at them every millisecond
                    Job j = incoming.poll(fetching.isEmpty() ? 50 : 1, TimeUnit.MILLISECONDS);
                    if (j != null) {
                        waiting.add(j);
                    } else if (fetching.isEmpty()) {
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
        collectFetches();
        reserveDecodeRoom();
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
        metrics.pendingBytes.set(manager.usage().pendingBytes());
        if (prefixCache != null) {
            metrics.prefixHitBlocks.set(prefixCache.stats().hitBlocks());
        }
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

    /**
     * Starts fetching {@code j}'s prompt blocks past the {@code localBlocks} the local cache has from the shared tier
     * on another thread: a slow or paused tier delays this request only (by at most the tier's timeout), never the
     * decode steps of the running ones. The request rejoins the head of the queue when the fetch is done.
     */
    private void startFetch(Job j, int localBlocks) {
        int[] prompt = j.context;
        j.fetch = fetcher.submit(() -> shared.fetch(prompt, localBlocks));
        fetching.add(j);
    }

    /** Requests whose fetch is done go back to the head of the queue, in the order their fetches started. */
    private void collectFetches() {
        for (int i = fetching.size() - 1; i >= 0; i--) {
            Job j = fetching.get(i);
            if (!j.fetch.isDone()) {
                continue;
            }
            fetching.remove(i);
            try {
                j.fetched = j.fetch.get();
            } catch (ExecutionException | java.util.concurrent.CancellationException e) {
                j.fetched = PrefixTier.Fetched.none();   // the tier closed under it: recompute
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                j.fetched = PrefixTier.Fetched.none();
            }
            j.fetch = null;
            waiting.addFirst(j);
        }
    }

    /** Requests queued for admission or fetching their prefix blocks (tests). */
    int fetchingRequests() {
        return fetching.size();
    }

    /**
     * Reserves one token of room for every request that decodes this step, oldest first. Where the store cannot
     * give it, the pressure policy acts (and the reservation is tried again) until it fits or nothing more can be
     * done; without a policy, or when nothing helps, the request fails with 503 (as an append past the limit would).
     */
    private void reserveDecodeRoom() {
        for (int i = 0; i < running.size(); i++) {
            Job j = running.get(i);
            if (j.finished || j.cancelled() || j.prefilling() || j.generated == 0) {
                continue;
            }
            boolean acted = false;
            while (j.sequence != null && !manager.reserve(j.sequence, 1)) {
                if (pressure == null || !relieve(j)) {
                    failMemory(j, "the next token needs " + manager.blocksToAppend(j.sequence, 1) + " more blocks "
                            + "and " + manager.usage().headroomBlocks() + " are free");
                    break;
                }
                acted = true;
            }
            if (acted) {
                // victims reserved earlier in this loop may have changed: a compressed table can end on a full block
                // (its next row needs a new one), a recomputed job left the list; reserve everyone again (each
                // sequence is compressed at most once, so this ends)
                i = -1;
            }
        }
    }

    /** Runs the pressure policy for {@code j}'s next token; false if it could do nothing. */
    private boolean relieve(Job j) {
        long need = Math.max(1, manager.blocksToAppend(j.sequence, 1) - manager.usage().headroomBlocks());
        List<PressurePolicy.Candidate> candidates = new ArrayList<>();
        Map<Sequence, Job> bySequence = new IdentityHashMap<>();
        for (Job r : running) {
            if (r.sequence != null && !r.finished && !r.prefilling() && r.generated > 0) {
                candidates.add(new PressurePolicy.Candidate(r.sequence, 0, r.arrivalNanos));
                bySequence.put(r.sequence, r);
            }
        }
        List<PressurePolicy.Decision> decisions = pressure.relieve(manager, candidates, need);
        List<Job> requeued = new ArrayList<>();
        for (PressurePolicy.Decision d : decisions) {
            Job victim = bySequence.get(d.sequence());
            switch (d.action()) {
                case COMPRESS -> {
                    victim.compressions++;
                    metrics.compressions.increment();
                }
                case SWAP -> {
                    victim.swaps++;
                    metrics.swaps.increment();
                    victim.swapped = justSwapped.remove(d.sequence());
                    running.remove(victim);
                    metrics.running.decrementAndGet();
                    dropSequence(victim); // closed by the swap already; drops the cache
                    swappedOut.add(victim);
                }
                case RECOMPUTE -> {
                    victim.recomputes++;
                    metrics.recomputes.increment();
                    requeued.add(victim);
                }
            }
        }
        justSwapped.clear();
        metrics.swapped.set(swappedOut.size());
        // back to the head of the queue, oldest first (their sequences are closed already)
        requeued.sort((a, b) -> Long.compare(b.arrivalNanos, a.arrivalNanos));
        for (Job r : requeued) {
            running.remove(r);
            metrics.running.decrementAndGet();
            dropSequence(r);
            if (running.isEmpty() && r == j) {
                // it alone does not fit: queuing it again would loop for ever
                failMemory(r, "a single request's context needs more than the limit");
                continue;
            }
            r.resumed = true;
            r.prefilled = 0;
            r.context = resumeContext(r);
            waiting.addFirst(r);
            metrics.waiting.incrementAndGet();
        }
        return !decisions.isEmpty();
    }

    /**
     * Brings swapped-out requests back, oldest first, while their blocks and one more token fit; returns whether
     * none is left out. A record that fails its checks turns the request into a recompute.
     */
    private boolean swapIn() {
        KvLayout layout = store.layout();
        long oneToken = 2L * layout.layers() * layout.kvHeads();   // at most one new block per table and K/V
        while (!swappedOut.isEmpty() && running.size() < config.maxBatch()) {
            Job j = swappedOut.peek();
            if (j.cancelled()) {
                swappedOut.poll();
                j.swapped.close();
                metrics.requestsCancelled.increment();
                continue;
            }
            long blocks = j.swapped.blockBytes() / layout.blockBytes();
            if (manager.usage().headroomBlocks() < blocks + oneToken) {
                if (running.isEmpty()) {
                    swappedOut.poll(); // it cannot come back even alone: waiting for ever would stall everyone
                    j.swapped.close();
                    j.swapped = null;
                    failMemory(j, "its " + blocks + " swapped-out blocks do not fit even with nothing running");
                    continue;
                }
                break;
            }
            swappedOut.poll();
            Sequence s;
            try {
                s = store.swapIn(j.swapped);
            } catch (KvSlabException e) {
                // a record was lost or corrupt, or memory ran short after all: recompute it instead
                j.swapped.close();
                j.swapped = null;
                j.recomputes++;
                metrics.recomputes.increment();
                j.resumed = true;
                j.prefilled = 0;
                j.context = resumeContext(j);
                waiting.addFirst(j);
                metrics.waiting.incrementAndGet();
                continue;
            }
            j.swapped = null;
            j.sequence = s;
            j.cache = new TimedCache(new StoreKvCache(s, KernelAttention.borrowing(attention)), attentionNanos);
            manager.reserve(s, 1); // fits: checked above with the swap-in's blocks
            running.add(j);
            metrics.running.incrementAndGet();
        }
        metrics.swapped.set(swappedOut.size());
        return swappedOut.isEmpty();
    }

    /** Prompt and every generated token but the pending one (fed at the next decode): what the cache held. */
    private static int[] resumeContext(Job j) {
        int[] prompt = j.request.promptTokens();
        int[] ctx = Arrays.copyOf(prompt, prompt.length + j.generated - 1);
        System.arraycopy(j.generatedIds, 0, ctx, prompt.length, j.generated - 1);
        return ctx;
    }

    /** Closes a request's cache and sequence (its reservation lapses with it). */
    private void dropSequence(Job j) {
        if (j.cache != null) {
            j.cache.close();
        }
        if (j.sequence != null) {
            manager.free(j.sequence);
        }
        j.cache = null;
        j.sequence = null;
    }

    /**
     * Admits waiting requests in arrival order while the batch has room and the store can promise the whole
     * prompt and its first decoded token (what a prefix-cache hit covers is not computed again).
     */
    private void admit() {
        if (!swapIn()) {
            return; // swapped-out requests go first: new ones wait until they are back
        }
        int tpb = store.layout().tokensPerBlock();
        while (!waiting.isEmpty() && running.size() < config.maxBatch()) {
            Job j = waiting.peek();
            boolean tiered = shared != null && !j.resumed;
            if (tiered && j.fetched == null) {
                int have = shared.localBlocks(j.context);
                if (have < Math.max(0, j.context.length - 1) / tpb) {
                    waiting.poll();   // stays counted as waiting; the others go on meanwhile
                    startFetch(j, have);
                    continue;
                }
                j.fetched = PrefixTier.Fetched.none();   // the local cache has every block: nothing to fetch
            }
            PrefixMatch m = prefixCache != null && !j.resumed
                    ? (tiered ? shared.local(store, j.context) : manager.computedBlocks(j.context, 0))
                    : new PrefixMatch(store.newSequence(), 0);
            Sequence s = m.sequence();
            // the prompt, and the first token it decodes in the step its last chunk runs (fetched blocks included:
            // they are appended below, after the reservation, so they use its promise)
            int tokens = j.context.length - m.matchedTokens() + 1;
            if (!manager.reserve(s, tokens)) {
                long need = manager.blocksToAppend(s, tokens);
                manager.free(s);
                if (running.isEmpty()) {
                    waiting.poll();
                    metrics.waiting.decrementAndGet();
                    fail(j, 503, "kv_memory_exhausted", "the prompt needs " + need * store.layout().blockBytes()
                            + " bytes of KV memory; the --kv-limit of " + limitBytes() + " bytes cannot hold it even "
                            + "with nothing else running");
                    continue;
                }
                return; // head-of-line waits: later requests do not overtake it
            }
            if (tiered) {
                PrefixMatch grown = shared.attach(m, j.fetched, j.context);
                j.fetched = null;
                if (grown.sequence() != s) {
                    // out of memory half-way (an allocation outside the reservations took the room): the tier
                    // closed the sequence and matched the local cache again; reserve for that one
                    s = grown.sequence();
                    if (!manager.reserve(s, j.context.length - grown.matchedTokens() + 1)) {
                        manager.free(s);
                        return;   // retried at the next step, from the local cache and a new fetch
                    }
                }
                m = grown;
            }
            waiting.poll();
            metrics.waiting.decrementAndGet();
            j.sequence = s;
            j.prefilled = m.matchedTokens();
            j.cache = new TimedCache(new StoreKvCache(s, KernelAttention.borrowing(attention)), attentionNanos);
            if (!j.resumed) {
                j.sampler = new Sampler(vocab, j.request.temperature(), j.request.topP(), j.request.seed());
                j.text = new CompletionText(j.request.stops());
            }
            running.add(j);
            metrics.running.incrementAndGet();
        }
    }

    private void prefillChunks() {
        requeue.clear();
        for (Job j : running) {
            if (!j.prefilling() || j.finished || j.cancelled()) {
                continue;
            }
            int[] prompt = j.context;
            int n = Math.min(forward.chunk(), prompt.length - j.prefilled);
            boolean last = j.prefilled + n == prompt.length;
            boolean sample = last && !j.resumed;
            try {
                forward.prefill(prompt, j.prefilled, n, j.prefilled, j.cache, sample ? rowLogits : null);
            } catch (MemoryLimitExceededException e) {
                if (running.size() > 1) {
                    requeue.add(j); // a sequence outside the reservations took the room: wait for room again
                } else {
                    failMemory(j, e.getMessage());
                }
                continue;
            } catch (KvSlabException | IllegalArgumentException e) {
                fail(j, 500, "server_error", "prefill failed: " + e.getMessage());
                continue;
            }
            j.prefilled += n;
            (j.resumed ? metrics.recomputedTokens : metrics.promptTokens).add(n);
            if (last && j.resumed) {
                continue; // prompt and generated tokens are back: it decodes its pending token this step
            }
            if (last) {
                if (shared != null) {
                    shared.prefilled(j.sequence, prompt);   // local insert and write-behind to the tier
                } else if (prefixCache != null) {
                    prefixCache.insert(j.sequence, prompt, prefixSalt);
                }
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
            dropSequence(j);
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
                    failMemory(j, m.getMessage());
                } else {
                    fail(j, 500, "server_error", "decode failed: " + failures[t].getMessage());
                }
                continue;
            }
            System.arraycopy(batchLogits, t * vocab, rowLogits, 0, vocab);
            j.position++;
            publishDecoded(j);
            accept(j, j.sampler.sample(rowLogits));
        }
        metrics.addPhase(Phase.SAMPLE, System.nanoTime() - t3);
    }

    /**
     * With a shared tier, a decode step that filled a block (the sequence holds {@code position} rows: the prompt
     * and the generated tokens fed so far) publishes the new full blocks, write-behind: the tier's queue copies the
     * rows and never waits. A request the pressure policy compressed or swapped is skipped (its rows may have
     * changed or its history is not known); the library checks each block again (never a compressed, evicted,
     * shifted or aliased one).
     */
    private void publishDecoded(Job j) {
        int tpb = store.layout().tokensPerBlock();
        if (shared == null || j.position % tpb != 0 || j.compressions > 0 || j.swaps > 0) {
            return;
        }
        int rows = Math.toIntExact(j.position);
        int[] prompt = j.request.promptTokens();
        if (rows <= prompt.length) {
            return;
        }
        int[] held = Arrays.copyOf(prompt, rows);
        System.arraycopy(j.generatedIds, 0, held, prompt.length, rows - prompt.length);
        shared.decoded(j.sequence, held);
    }

    /** A sampled token: BOS ends the completion (llama2.c's rule); otherwise it is text, and maybe the last token. */
    private void accept(Job j, int token) {
        Tokenizer tok = model.tokenizer();
        if (token == tok.bos()) {
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

    private void failMemory(Job j, String why) {
        fail(j, 503, "kv_memory_exhausted", "out of KV memory at position " + (j.prefilling() ? j.prefilled : j.position)
                + ": KV memory limit exceeded (" + why + ")" + (pressure == null ? "; start the server with --pressure"
                + " to compress, swap or recompute sequences instead" : "; the pressure policy could free nothing"));
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
        for (Job j : fetching) {
            j.fetch.cancel(true);
            metrics.requestsFailed.increment();
            j.events.add(new JobEvent.Failed(status, type, code, message));
        }
        fetching.clear();
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
            dropSequence(j);
        }
        running.clear();
        for (Job j : swappedOut) {
            j.swapped.close();
            if (!j.finished) {
                j.finished = true;
                metrics.requestsFailed.increment();
                j.events.add(new JobEvent.Failed(503, "server_error", "scheduler_stopped",
                        "the scheduler is not running (the server is shutting down)"));
            }
        }
        swappedOut.clear();
        metrics.swapped.set(0);
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
        if (fetcher != null) {
            fetcher.shutdownNow();
        }
        attention.close();
        decodeAttention.close();
        if (pressure != null) {
            pressure.close();
        }
        if (shared != null) {
            shared.close();
        }
        if (swapTier != null) {
            Path dir = swapTier.directory();
            swapTier.close();
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException e) {
                // a temporary directory left behind is not worth failing a shutdown for
            }
        }
        if (prefixCache != null) {
            prefixCache.close();
        }
        store.close();
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
