package io.kvslab;

import io.kvslab.internal.table.AllocatorStats;

import java.util.HashMap;
import java.util.Map;

/**
 * The memory side of a serving scheduler, after vLLM v1's {@code KVCacheManager}: before a step, the scheduler asks
 * for room for the tokens each sequence will append ({@link #reserve}, like {@code allocate_slots}); a "no" is a
 * {@code false}, not an exception, because it is the normal signal to preempt, compress or wait. It frees finished
 * sequences ({@link #free}), reads usage and headroom ({@link #usage}), and asks which leading blocks of a new
 * prompt are already computed ({@link #computedBlocks}, like {@code get_computed_blocks}).
 *
 * <p><b>What a reservation promises.</b> {@code reserve(s, n)} counts the blocks appending {@code n} rows to every
 * (layer, KV head) of {@code s} would allocate now ({@link #blocksToAppend}: new tail blocks, plus copies of shared
 * partial tails) and promises them: they are counted as taken for every later reservation until {@code s}
 * appends them (each append's new blocks use its promise up; the transient blocks of a compression or a
 * rebuild do not), its reservation is released, or it closes.
 * As long as every allocation in the store is made by sequences that reserved first, an append of up to {@code n}
 * tokens after a successful {@code reserve(s, n)} never hits the limit. Allocations without a reservation (a
 * sequence the scheduler does not manage) are not stopped, but they do count against everyone's headroom.
 *
 * <p>A store has one manager ({@link #of}); it does not own the sequences. Thread-safe: a check and its promise are
 * one step under this manager's monitor, so two threads never get the same free blocks. While another thread is
 * in the middle of an append, its blocks may briefly count twice (allocated and still promised): a reservation can
 * then say no where it would fit a moment later, never the reverse.
 */
public final class KvCacheManager {
    private final KvStore store;
    private final long blockBytes;
    private final long capacityBlocks;
    /** Unused promised blocks by sequence id; only ids with a positive promise are present. */
    private final Map<Long, Long> pending = new HashMap<>();
    private long pendingTotal;
    private volatile PrefixCache prefixCache;

    private KvCacheManager(KvStore store) {
        this.store = store;
        // K and V blocks may differ in size (K and V types differ): count every block as the larger, so the
        // capacity in blocks never promises more than the limit holds.
        this.blockBytes = Math.max(store.layout().keyBlockBytes(), store.layout().valueBlockBytes());
        this.capacityBlocks = store.config().limitBytes() / blockBytes;
    }

    /**
     * The store's manager (created on the first call; every call returns the same one).
     *
     * @param store an open store
     * @return the store's one manager
     */
    public static KvCacheManager of(KvStore store) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        synchronized (KvCacheManager.class) {
            if (store.cacheManager == null) {
                store.cacheManager = new KvCacheManager(store);
            }
            return store.cacheManager;
        }
    }

    /**
     * The store whose blocks this manager reserves.
     *
     * @return the store given to {@link #of}
     */
    public KvStore store() {
        return store;
    }

    /**
     * Uses {@code cache} for {@link #computedBlocks}, and evicts its unreferenced prefixes when a reservation would
     * otherwise be refused; {@code null} stops using one.
     *
     * @param cache a prefix cache of the same store, or {@code null}
     */
    public void usePrefixCache(PrefixCache cache) {
        this.prefixCache = cache;
    }

    /**
     * Blocks an append of {@code tokens} rows to every (layer, KV head) of {@code s} would allocate now: per table,
     * K and V blocks past its last block, plus one copy per shared partial tail block (copy-on-write after a fork).
     *
     * @param s an open sequence of this manager's store
     * @param tokens rows to append to every (layer, KV head), {@code >= 0}
     * @return the number of blocks, {@code >= 0}
     */
    public long blocksToAppend(Sequence s, int tokens) {
        checkSequence(s);
        if (tokens < 0) {
            throw new KvArgumentException("tokens must be >= 0, got " + tokens);
        }
        return s.tables.blocksToAppend(tokens);
    }

    /**
     * Reserves room for {@code tokens} more rows in every (layer, KV head) of {@code s}, all layers at once, or
     * returns {@code false} and changes nothing. Replaces the unused part of {@code s}'s earlier reservation (so a
     * decode loop calls {@code reserve(s, 1)} every step). When a prefix cache is in use and the blocks are short,
     * unreferenced cached prefixes are evicted first.
     *
     * @param s an open sequence of this manager's store
     * @param tokens rows to reserve room for, {@code >= 0}
     * @return {@code true} if reserved, {@code false} if the store's limit cannot hold it (nothing changed)
     * @throws KvArgumentException for a negative count or a sequence of another store
     * @throws ClosedException     if the sequence or store is closed
     */
    public boolean reserve(Sequence s, int tokens) {
        long need = blocksToAppend(s, tokens);
        long shortfall = tryPromise(s, need);
        if (shortfall == 0) {
            return true;
        }
        PrefixCache cache = prefixCache;
        if (cache == null || cache.evict(Math.multiplyExact(shortfall, blockBytes)) == 0) {
            return false;
        }
        return tryPromise(s, need) == 0;
    }

    /**
     * Promises {@code need} blocks to {@code s} if they fit; returns 0, or the blocks missing. Checks again that
     * {@code s} is open, under this monitor: a sequence marks itself closed before its close callback
     * ({@link #closed}) takes the monitor, so a close racing this call either is seen here or drops the promise
     * after it. A promise made to a closed sequence would never be dropped.
     */
    private synchronized long tryPromise(Sequence s, long need) {
        s.checkOpen();
        long id = s.id();
        long old = pending.getOrDefault(id, 0L);
        long free = capacityBlocks - store.tables.liveBlocks() - (pendingTotal - old);
        if (need > free) {
            return need - Math.max(0, free);
        }
        set(id, old, need);
        return 0;
    }

    /**
     * Drops the unused part of {@code s}'s reservation (the sequence keeps its blocks).
     *
     * @param s a sequence of this manager's store
     */
    public synchronized void release(Sequence s) {
        checkSequence(s);
        set(s.id(), pending.getOrDefault(s.id(), 0L), 0);
    }

    /**
     * Releases {@code s}'s reservation and closes it (its blocks return to the store; shared ones stay alive).
     * Idempotent.
     *
     * @param s a sequence of this manager's store
     */
    public void free(Sequence s) {
        if (s == null) {
            throw new KvArgumentException("sequence must not be null");
        }
        if (s.store != store) {
            throw new KvArgumentException("sequence " + s.id() + " belongs to another store than this manager's");
        }
        s.close(); // the store's close callback drops the promise
        closed(s.id());
    }

    /**
     * Promised blocks {@code s} has not allocated yet.
     *
     * @param s a sequence of this manager's store
     * @return blocks reserved for {@code s} and not yet allocated, {@code >= 0}
     */
    public synchronized long pendingBlocks(Sequence s) {
        checkSequence(s);
        return pending.getOrDefault(s.id(), 0L);
    }

    /**
     * Capacity, live, promised and slab bytes now.
     *
     * @return a snapshot of the store's capacity and use
     */
    public synchronized KvCacheUsage usage() {
        AllocatorStats m = store.tables.stats();
        return new KvCacheUsage(blockBytes, capacityBlocks, m.liveBlocks(), pendingTotal, m.reservedBytes(),
                store.config().limitBytes());
    }

    /**
     * The already-computed leading blocks of a new prompt: a new sequence holding the prefix cache's blocks for the
     * longest cached prefix of {@code prompt} without its last token (that token must still run, for its logits),
     * so {@link PrefixMatch#matchedBlocks()} whole blocks and {@link PrefixMatch#matchedTokens()} tokens are done.
     * Without a prefix cache, an empty sequence and 0. The caller owns the sequence (free it with {@link #free}).
     *
     * @param prompt the prompt's token ids
     * @param salt the prefix cache's salt for this model
     * @return the match: a new sequence holding the computed blocks and the number of tokens they cover
     */
    public PrefixMatch computedBlocks(int[] prompt, long salt) {
        if (prompt == null) {
            throw new KvArgumentException("prompt must not be null");
        }
        PrefixCache cache = prefixCache;
        if (cache == null || prompt.length <= 1) {
            return new PrefixMatch(store.newSequence(), 0);
        }
        return cache.lookup(java.util.Arrays.copyOf(prompt, prompt.length - 1), salt);
    }

    // ---- called by the store (block tables' callbacks)

    /** An append allocated {@code blocks} for sequence {@code id}: they use up its promise first. */
    synchronized void appended(long id, int blocks) {
        Long old = pending.get(id);
        if (old != null) {
            set(id, old, Math.max(0, old - blocks));
        }
    }

    /** Sequence {@code id} closed: its promise lapses. */
    synchronized void closed(long id) {
        Long old = pending.get(id);
        if (old != null) {
            set(id, old, 0);
        }
    }

    private void set(long id, long old, long now) {
        pendingTotal += now - old;
        if (now == 0) {
            pending.remove(id);
        } else {
            pending.put(id, now);
        }
    }

    private void checkSequence(Sequence s) {
        if (s == null) {
            throw new KvArgumentException("sequence must not be null");
        }
        if (s.store != store) {
            throw new KvArgumentException("sequence " + s.id() + " belongs to another store than this manager's");
        }
        s.checkOpen();
    }
}
