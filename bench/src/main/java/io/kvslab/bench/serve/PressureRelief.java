package io.kvslab.bench.serve;

import io.kvslab.KvCacheManager;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.SwappedSequence;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Room for the next decode step: one token reserved for every decoding request, and where the store cannot give
 * it, the {@link PressurePolicy} ({@code --pressure}: compress, swap, recompute) acts on the running requests; swapped
 * requests come back, oldest first, before any new admission. Without a policy a request that finds no room fails
 * with 503. Scheduler thread only.
 */
final class PressureRelief implements AutoCloseable {
    private final KvStore store;
    private final KvCacheManager manager;
    private final Requests requests;
    private final Delivery delivery;
    private final SequenceCaches caches;
    private final ServerMetrics metrics;
    private final int maxBatch;
    /** Where {@code swap} puts sequences (a disk tier in a temporary directory); null without swap. */
    private final DiskTier swapTier;
    /** Null without {@code --pressure}. */
    private final PressurePolicy pressure;
    /** Handles of the sequences the policy swapped out during the current relief, by sequence. */
    private final Map<Sequence, SwappedSequence> justSwapped = new IdentityHashMap<>();

    PressureRelief(ServeConfig config, ServeStore kv, Requests requests, Delivery delivery, SequenceCaches caches,
                   ServerMetrics metrics) {
        this.store = kv.store;
        this.manager = kv.manager;
        this.requests = requests;
        this.delivery = delivery;
        this.caches = caches;
        this.metrics = metrics;
        this.maxBatch = config.maxBatch();
        this.swapTier = config.pressure() != null && config.pressure().toLowerCase(Locale.ROOT)
                .matches("(^|.*,)\\s*swap\\s*(,.*|$)") ? openSwapTier() : null;
        this.pressure = config.pressure() == null ? null : PressurePolicy.parse(config.pressure(), swapTier == null
                ? null : this::swapOut);
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

    /**
     * Reserves one token of room for every request that decodes this step, oldest first. Where the store cannot
     * give it, the pressure policy acts (and the reservation is tried again) until it fits or nothing more can be
     * done; without a policy, or when nothing helps, the request fails with 503 (as an append past the limit would).
     */
    void reserveDecodeRoom() {
        List<Job> running = requests.running;
        for (int i = 0; i < running.size(); i++) {
            Job j = running.get(i);
            if (!Requests.decoding(j)) {
                continue;
            }
            boolean acted = false;
            while (j.sequence != null && !manager.reserve(j.sequence, 1)) {
                if (pressure == null || !relieve(j)) {
                    delivery.failMemory(j, "the next token needs " + manager.blocksToAppend(j.sequence, 1)
                            + " more blocks and " + manager.usage().headroomBlocks() + " are free");
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
        for (Job r : requests.running) {
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
                    requests.stop(victim); // closed by the swap already; drops the cache
                    requests.swappedOut.add(victim);
                }
                case RECOMPUTE -> {
                    victim.recomputes++;
                    metrics.recomputes.increment();
                    requeued.add(victim);
                }
            }
        }
        justSwapped.clear();
        metrics.swapped.set(requests.swappedOut.size());
        // back to the head of the queue, oldest first (their sequences are closed already)
        requeued.sort((a, b) -> Long.compare(b.arrivalNanos, a.arrivalNanos));
        for (Job r : requeued) {
            requests.stop(r);
            if (requests.running.isEmpty() && r == j) {
                // it alone does not fit: queuing it again would loop for ever
                delivery.failMemory(r, "a single request's context needs more than the limit");
                continue;
            }
            Requests.resumeLater(r);
            requests.requeueFirst(r);
        }
        return !decisions.isEmpty();
    }

    /**
     * Brings swapped-out requests back, oldest first, while their blocks and one more token fit; returns whether
     * none is left out. A record that fails its checks turns the request into a recompute.
     */
    boolean swapIn() {
        KvLayout layout = store.layout();
        long oneToken = 2L * layout.layers() * layout.kvHeads();   // at most one new block per table and K/V
        // the smaller block size counts a mixed K/V pair's blocks conservatively (never fewer than it allocates)
        long blockUnit = Math.min(layout.keyBlockBytes(), layout.valueBlockBytes());
        while (!requests.swappedOut.isEmpty() && requests.running.size() < maxBatch) {
            Job j = requests.swappedOut.peek();
            if (j.cancelled()) {
                requests.swappedOut.poll();
                j.swapped.close();
                metrics.requestsCancelled.increment();
                continue;
            }
            long blocks = (j.swapped.blockBytes() + blockUnit - 1) / blockUnit;
            if (manager.usage().headroomBlocks() < blocks + oneToken) {
                if (requests.running.isEmpty()) {
                    requests.swappedOut.poll(); // it cannot come back even alone: waiting for ever would stall everyone
                    j.swapped.close();
                    j.swapped = null;
                    delivery.failMemory(j, "its " + blocks + " swapped-out blocks do not fit even with nothing running");
                    continue;
                }
                break;
            }
            requests.swappedOut.poll();
            Sequence s;
            try {
                s = store.swapIn(j.swapped);
            } catch (KvSlabException e) {
                // a record was lost or corrupt, or memory ran short after all: recompute it instead
                j.swapped.close();
                j.swapped = null;
                j.recomputes++;
                metrics.recomputes.increment();
                Requests.resumeLater(j);
                requests.requeueFirst(j);
                continue;
            }
            j.swapped = null;
            j.sequence = s;
            j.cache = caches.open(s);
            manager.reserve(s, 1); // fits: checked above with the swap-in's blocks
            requests.run(j);
        }
        metrics.swapped.set(requests.swappedOut.size());
        return requests.swappedOut.isEmpty();
    }

    /** On shutdown: swapped-out requests are told the scheduler stopped, their records removed. */
    void failSwapped() {
        for (Job j : requests.swappedOut) {
            j.swapped.close();
            if (!j.finished) {
                j.finished = true;
                metrics.requestsFailed.increment();
                Delivery.send(j, new JobEvent.Failed(503, "server_error", "scheduler_stopped",
                        "the scheduler is not running (the server is shutting down)"));
            }
        }
        requests.swappedOut.clear();
        metrics.swapped.set(0);
    }

    @Override
    public void close() {
        if (pressure != null) {
            pressure.close();
        }
        if (swapTier != null) {
            Path dir = swapTier.directory();
            swapTier.close();
            try (var files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException e) {
                // a temporary directory left behind is not worth failing a shutdown for
            }
        }
    }
}
