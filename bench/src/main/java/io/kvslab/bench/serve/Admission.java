package io.kvslab.bench.serve;

import io.kvslab.KvCacheManager;
import io.kvslab.KvStore;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.bench.model.Sampler;
import io.kvslab.tier.PrefixTier;

import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Admission of waiting requests in arrival order while the batch has room and the store can promise the whole
 * prompt and its first decoded token (a prefix-cache hit's blocks are not computed again). With a shared tier, a
 * prompt whose prefix blocks are not all local leaves the queue to fetch them on a virtual thread, and rejoins its
 * head when the fetch is done. Scheduler thread only (but for the fetches).
 */
final class Admission implements AutoCloseable {
    private final ServeStore kv;
    private final KvStore store;
    private final KvCacheManager manager;
    private final Requests requests;
    private final Delivery delivery;
    private final SequenceCaches caches;
    private final PressureRelief relief;
    private final int maxBatch;
    private final int vocab;
    /** Runs the shared tier's fetches (network and verification) off the scheduler; null without a shared tier. */
    private final ExecutorService fetcher;

    Admission(ServeConfig config, ServeStore kv, Requests requests, Delivery delivery, SequenceCaches caches,
              PressureRelief relief, int vocab) {
        this.kv = kv;
        this.store = kv.store;
        this.manager = kv.manager;
        this.requests = requests;
        this.delivery = delivery;
        this.caches = caches;
        this.relief = relief;
        this.maxBatch = config.maxBatch();
        this.vocab = vocab;
        this.fetcher = kv.shared == null ? null
                : Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("kvslab-prefix-fetch-", 0).factory());
    }

    /**
     * Admits waiting requests in arrival order while the batch has room and the store can promise the whole
     * prompt and its first decoded token (what a prefix-cache hit covers is not computed again).
     */
    void admit() {
        if (!relief.swapIn()) {
            return; // swapped-out requests go first: new ones wait until they are back
        }
        int tpb = store.layout().tokensPerBlock();
        SharedPrefixes shared = kv.shared;
        while (!requests.waiting.isEmpty() && requests.running.size() < maxBatch) {
            Job j = requests.waiting.peek();
            boolean tiered = shared != null && !j.resumed;
            if (tiered && j.fetched == null) {
                int have = shared.localBlocks(j.context);
                if (have < Math.max(0, j.context.length - 1) / tpb) {
                    requests.waiting.poll();   // stays counted as waiting; the others go on meanwhile
                    startFetch(j, have);
                    continue;
                }
                j.fetched = PrefixTier.Fetched.none();   // the local cache has every block: nothing to fetch
            }
            PrefixMatch m = kv.prefixCache != null && !j.resumed
                    ? (tiered ? shared.local(store, j.context) : manager.computedBlocks(j.context, 0))
                    : new PrefixMatch(store.newSequence(), 0);
            Sequence s = m.sequence();
            // the prompt, and the first token it decodes in the step its last chunk runs (fetched blocks included:
            // they are appended below, after the reservation, so they use its promise)
            int tokens = j.context.length - m.matchedTokens() + 1;
            if (!manager.reserve(s, tokens)) {
                long need = manager.blocksToAppend(s, tokens);
                manager.free(s);
                if (requests.running.isEmpty()) {
                    requests.dequeue();
                    delivery.fail(j, 503, "kv_memory_exhausted", "the prompt needs "
                            + need * manager.usage().blockBytes() + " bytes of KV memory; the --kv-limit of "
                            + store.config().limitBytes() + " bytes cannot hold it even with nothing else running");
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
            requests.dequeue();
            j.sequence = s;
            j.prefilled = m.matchedTokens();
            j.cache = caches.open(s);
            if (!j.resumed) {
                j.sampler = new Sampler(vocab, j.request.temperature(), j.request.topP(), j.request.seed());
                j.text = new CompletionText(j.request.stops());
            }
            requests.run(j);
        }
    }

    /**
     * Starts fetching {@code j}'s prompt blocks past the {@code localBlocks} the local cache has from the shared tier
     * on another thread: a slow or paused tier delays this request only (by at most the tier's timeout), never the
     * decode steps of the running ones. The request rejoins the head of the queue when the fetch is done.
     */
    private void startFetch(Job j, int localBlocks) {
        int[] prompt = j.context;
        j.fetch = fetcher.submit(() -> kv.shared.fetch(prompt, localBlocks));
        requests.fetching.add(j);
    }

    /** Requests whose fetch is done go back to the head of the queue, in the order their fetches started. */
    void collectFetches() {
        for (int i = requests.fetching.size() - 1; i >= 0; i--) {
            Job j = requests.fetching.get(i);
            if (!j.fetch.isDone()) {
                continue;
            }
            requests.fetching.remove(i);
            try {
                j.fetched = j.fetch.get();
            } catch (ExecutionException | CancellationException e) {
                j.fetched = PrefixTier.Fetched.none();   // the tier closed under it: recompute
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                j.fetched = PrefixTier.Fetched.none();
            }
            j.fetch = null;
            requests.waiting.addFirst(j);
        }
    }

    @Override
    public void close() {
        if (fetcher != null) {
            fetcher.shutdownNow();
        }
    }
}
