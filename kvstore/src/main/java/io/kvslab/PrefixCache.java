package io.kvslab;

import io.kvslab.KvArgumentException;
import io.kvslab.internal.table.PrefixBlocks;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * Reuses the KV blocks of identical token prefixes across sequences (automatic prefix caching, as in vLLM).
 *
 * <p><b>Keys.</b> A prompt is cut into token blocks of {@code tokensPerBlock} tokens; only full blocks are cached.
 * Block {@code i} is keyed by a chained hash {@code h_i = H(h_{i-1}, salt, tokens of block i)} with
 * {@code h_{-1} = 0}, so a key names the whole prefix up to and including its block. The salt isolates tenants:
 * entries inserted with one salt are never found with another. An entry also keeps its tokens, salt and parent,
 * and a lookup compares them, so a hash collision is a miss, never a wrong reuse.
 *
 * <p><b>Values.</b> An entry holds one reference to the K and V block of its token block in every (layer, KV
 * head). {@link #lookup} returns a new sequence that references the cached blocks of the longest matching prefix
 * (like {@link Sequence#fork()}: no data copied, shared blocks are never written; the sequence's first append
 * allocates a new block, since cached blocks are full).
 *
 * <p><b>Eviction.</b> An entry is <em>unreferenced</em> when no sequence holds its blocks. Unreferenced leaf
 * entries are evicted least recently used first: when the cache is over its block capacity at an insert, through
 * {@link #evict(long)}, and under memory pressure: the cache registers a {@link MemoryPressureHandler} with its
 * store, so an allocation that would exceed the store's limit first evicts cached prefixes. A lookup refreshes
 * its chain leaf first, so parents are always more recent than their children and leaves go first.
 *
 * <p>Thread-safe. Lock order: a sequence's lock before this cache's monitor (the pressure handler runs on a thread
 * holding its sequence's write lock), the allocator's monitor after it. Close the cache (which drops its
 * references) before closing the store.
 */
public final class PrefixCache implements AutoCloseable {
    private static final long ROOT_HASH = 0L;

    private final KvStore store;
    /** The cache's block references (handles stay in the table package). */
    private final PrefixBlocks blocks;
    private final int tokensPerBlock;
    private final int tables;
    private final long maxBlocks;
    /** Access-ordered: iteration starts at the least recently used entry. */
    private final LinkedHashMap<Long, Entry> entries = new LinkedHashMap<>(64, 0.75f, true);
    private final MemoryPressureHandler pressureHandler = this::relieve;
    private long heldBlocks;
    private long hitBlocks;
    private long missBlocks;
    private long evictedBlocks;
    private long freedBlocks;
    private boolean closed;

    /** One cached token block: its K and V block in every (layer, KV head), indexed layer * kvHeads + head. */
    private static final class Entry {
        final long hash;
        final Entry parent;
        final long salt;
        final int[] tokens;
        final PrefixBlocks.Column column;
        int children;

        Entry(long hash, Entry parent, long salt, int[] tokens, PrefixBlocks.Column column) {
            this.hash = hash;
            this.parent = parent;
            this.salt = salt;
            this.tokens = tokens;
            this.column = column;
        }
    }

    private PrefixCache(KvStore store, long maxBlocks) {
        this.store = store;
        this.blocks = new PrefixBlocks(store.tables);
        this.tokensPerBlock = store.layout().tokensPerBlock();
        this.tables = store.layout().layers() * store.layout().kvHeads();
        this.maxBlocks = maxBlocks;
    }

    /**
     * A cache without a capacity of its own: it only gives blocks back under memory pressure or on request.
     *
     * @param store the open store whose blocks the cache references
     * @return a new, empty cache, registered as a memory-pressure handler of {@code store}
     */
    public static PrefixCache create(KvStore store) {
        return create(store, Long.MAX_VALUE);
    }

    /**
     * A cache holding at most {@code maxBlocks} K/V blocks (each cached token block takes
     * {@code 2 x layers x kvHeads}); past that, inserts evict unreferenced entries LRU first, or stop caching.
     *
     * @param store the open store whose blocks the cache references
     * @param maxBlocks the most K/V blocks the cache holds, {@code >= 0}
     * @return a new, empty cache
     */
    public static PrefixCache create(KvStore store, long maxBlocks) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        if (maxBlocks <= 0) {
            throw new KvArgumentException("maxBlocks must be > 0, got " + maxBlocks);
        }
        store.checkOpen();
        PrefixCache cache = new PrefixCache(store, maxBlocks);
        store.addPressureHandler(cache.pressureHandler);
        return cache;
    }

    /**
     * Tokens per cached block: the store layout's tokens per block. Only whole token blocks are cached.
     *
     * @return the block size in tokens, {@code >= 1}
     */
    public int tokensPerBlock() {
        return tokensPerBlock;
    }

    /**
     * The chained hashes of the full token blocks of {@code tokens}: element i names tokens
     * {@code [0, (i + 1) * tokensPerBlock)} under {@code salt}.
     *
     * @param tokens the token ids of a prompt
     * @param salt separates caches whose KV differs for the same tokens (model, adapter, tenant); the same salt must be
     *         used for insert and lookup
     * @param tokensPerBlock tokens per block, {@code >= 1}
     * @return one hash per full token block, {@code tokens.length / tokensPerBlock} in all
     */
    public static long[] chainedHashes(int[] tokens, long salt, int tokensPerBlock) {
        if (tokens == null || tokensPerBlock <= 0) {
            throw new KvArgumentException("tokens must not be null and tokensPerBlock must be > 0");
        }
        long[] h = new long[tokens.length / tokensPerBlock];
        long parent = ROOT_HASH;
        for (int i = 0; i < h.length; i++) {
            parent = blockHash(parent, salt, tokens, i * tokensPerBlock, tokensPerBlock);
            h[i] = parent;
        }
        return h;
    }

    /**
     * A new sequence holding the cached blocks of the longest cached prefix of {@code tokens} (whole token
     * blocks, positions {@code 0 .. matchedTokens - 1}); empty when nothing matches. The caller prefills the rest
     * from position {@code matchedTokens} on and closes the sequence. To keep at least one token to compute (for
     * its logits), look up {@code tokens} without its last token.
     *
     * @param tokens the prompt's token ids
     * @param salt the salt the blocks were inserted under
     * @return the match: a new sequence (possibly empty) and the number of tokens it covers
     */
    public PrefixMatch lookup(int[] tokens, long salt) {
        if (tokens == null) {
            throw new KvArgumentException("tokens must not be null");
        }
        // Lock order everywhere: store lock, then a sequence's lock, then this cache, then the allocator.
        synchronized (this) {
            checkOpen();
        }
        Sequence seq = store.newSequence();
        try {
            int matched = seq.tables.underWriteLock(() -> {
                synchronized (this) {
                    checkOpen();
                    int full = tokens.length / tokensPerBlock;
                    List<Entry> chain = matchChain(tokens, salt, full);
                    touch(chain);
                    hitBlocks += chain.size();
                    missBlocks += full - chain.size();
                    store.prefixHitBlocks.add(chain.size());
                    store.prefixMissBlocks.add(full - chain.size());
                    List<PrefixBlocks.Column> columns = new ArrayList<>(chain.size());
                    for (Entry e : chain) {
                        columns.add(e.column);
                    }
                    blocks.adopt(seq.tables, columns);
                    return chain.size() * tokensPerBlock;
                }
            });
            return new PrefixMatch(seq, matched);
        } catch (RuntimeException e) {
            seq.close();
            throw e;
        }
    }

    /**
     * Caches the full blocks of {@code s} that hold {@code tokens}: token block i is cached if every (layer, KV
     * head) of {@code s} stores rows {@code 0 .. (i + 1) * tokensPerBlock - 1} at positions equal to their row
     * index (an uncompressed prefix starting at position 0). Blocks already cached under the same key are kept
     * as they are. The caller vouches that the rows were computed from these tokens.
     *
     * @param s an open sequence of this cache's store holding the prompt's prefill
     * @param tokens the prompt's token ids, in position order
     * @param salt the salt to cache the blocks under
     * @return the number of token blocks newly cached
     */
    public int insert(Sequence s, int[] tokens, long salt) {
        if (s == null || tokens == null) {
            throw new KvArgumentException("sequence and tokens must not be null");
        }
        if (s.store != store) {
            throw new KvArgumentException("sequence " + s.id() + " belongs to another store than this cache");
        }
        return s.tables.underReadLock(() -> {
            synchronized (this) {
                checkOpen();
                int full = Math.min(tokens.length / tokensPerBlock, PrefixBlocks.publishableRows(s.tables) / tokensPerBlock);
                List<Entry> chain = new ArrayList<>();
                Set<Entry> protect = Collections.newSetFromMap(new IdentityHashMap<>());
                Entry parent = null;
                long hash = ROOT_HASH;
                int added = 0;
                for (int i = 0; i < full; i++) {
                    hash = blockHash(hash, salt, tokens, i * tokensPerBlock, tokensPerBlock);
                    Entry e = entries.get(hash);
                    if (e != null) {
                        if (!sameBlock(e, parent, salt, tokens, i * tokensPerBlock)) {
                            break;   // a hash collision with another prefix: keep the existing entry
                        }
                    } else {
                        if (heldBlocks + 2L * tables > maxBlocks
                                && evictLru(heldBlocks + 2L * tables - maxBlocks, protect) < 0) {
                            break;   // full of referenced entries: cache no more of this prefix
                        }
                        e = newEntry(s, i, hash, parent, salt, tokens);
                        added++;
                    }
                    chain.add(e);
                    protect.add(e);
                    parent = e;
                }
                touch(chain);
                return added;
            }
        });
    }

    /**
     * Evicts unreferenced entries, least recently used leaves first, until at least {@code bytes} of native
     * memory were freed or nothing more can be evicted. Returns the bytes freed.
     *
     * @param bytes the native bytes wanted, {@code >= 0}
     * @return the bytes freed, possibly fewer than asked (blocks a sequence still references are not freed)
     */
    public long evict(long bytes) {
        if (bytes < 0) {
            throw new KvArgumentException("bytes must be >= 0, got " + bytes);
        }
        store.enter();
        try {
            synchronized (this) {
                checkOpen();
                // K and V blocks may differ in size: count by the smaller so at least `bytes` are freed, and
                // report the freed blocks as K/V pairs (the cache evicts a position's K and V blocks together).
                KvLayout l = store.layout();
                long before = freedBlocks;
                evictLru(blocksFor(bytes, Math.min(l.keyBlockBytes(), l.valueBlockBytes())), Set.of());
                long freed = freedBlocks - before;
                return freed / 2 * l.blockPairBytes() + freed % 2 * Math.min(l.keyBlockBytes(), l.valueBlockBytes());
            }
        } finally {
            store.exit();
        }
    }

    /** Drops every entry (referenced or not); blocks still used by sequences stay alive with them. */
    public void clear() {
        store.enter();
        try {
            synchronized (this) {
                checkOpen();
                dropAll();
            }
        } finally {
            store.exit();
        }
    }

    /**
     * This cache's entries and block counters since creation (cached, hit, missed, evicted).
     *
     * @return a consistent snapshot of the counters
     */
    public synchronized PrefixCacheStats stats() {
        return new PrefixCacheStats(entries.size(), heldBlocks, hitBlocks, missBlocks, evictedBlocks);
    }

    /** Unregisters the pressure handler and drops every entry. Idempotent; a no-op after the store closed. */
    @Override
    public void close() {
        store.removePressureHandler(pressureHandler);
        try {
            store.enter();
        } catch (ClosedException e) {
            synchronized (this) {
                closed = true;
            }
            return;
        }
        try {
            synchronized (this) {
                if (!closed) {
                    dropAll();
                    closed = true;
                }
            }
        } finally {
            store.exit();
        }
    }

    // ---------------------------------------------------------------- internals (monitor held)

    private List<Entry> matchChain(int[] tokens, long salt, int full) {
        List<Entry> chain = new ArrayList<>();
        Entry parent = null;
        long hash = ROOT_HASH;
        for (int i = 0; i < full; i++) {
            hash = blockHash(hash, salt, tokens, i * tokensPerBlock, tokensPerBlock);
            Entry e = entries.get(hash);
            if (e == null || !sameBlock(e, parent, salt, tokens, i * tokensPerBlock)) {
                break;
            }
            chain.add(e);
            parent = e;
        }
        return chain;
    }

    private boolean sameBlock(Entry e, Entry parent, long salt, int[] tokens, int from) {
        if (e.parent != parent || e.salt != salt) {
            return false;
        }
        for (int t = 0; t < tokensPerBlock; t++) {
            if (e.tokens[t] != tokens[from + t]) {
                return false;
            }
        }
        return true;
    }

    /** Marks the chain used, leaf first, so that every parent is more recent than its children. */
    private void touch(List<Entry> chain) {
        for (int i = chain.size() - 1; i >= 0; i--) {
            entries.get(chain.get(i).hash);
        }
    }

    private Entry newEntry(Sequence s, int block, long hash, Entry parent, long salt, int[] tokens) {
        PrefixBlocks.Column column = blocks.pin(s.tables, block);
        int[] own = new int[tokensPerBlock];
        System.arraycopy(tokens, block * tokensPerBlock, own, 0, tokensPerBlock);
        Entry e = new Entry(hash, parent, salt, own, column);
        if (parent != null) {
            parent.children++;
        }
        entries.put(hash, e);
        heldBlocks += 2L * tables;
        store.prefixCachedBlocks.addAndGet(2L * tables);
        return e;
    }

    /**
     * Evicts unreferenced leaf entries, least recently used first (a parent becomes a leaf once its children
     * went), until {@code blocksWanted} blocks were dropped from the cache or nothing more can go. Returns the
     * number of blocks dropped, or -1 if fewer than wanted.
     */
    private long evictLru(long blocksWanted, Set<Entry> protect) {
        long dropped = 0;
        boolean progress = true;
        while (dropped < blocksWanted && progress) {
            progress = false;
            Iterator<Entry> it = entries.values().iterator();
            while (it.hasNext() && dropped < blocksWanted) {
                Entry e = it.next();
                if (e.children == 0 && !protect.contains(e) && blocks.unreferenced(e.column)) {
                    it.remove();
                    dropped += drop(e);
                    progress = true;
                }
            }
        }
        return dropped >= blocksWanted ? dropped : -1;
    }

    /** Releases the cache's references of an entry already removed from the map; returns blocks dropped. */
    private long drop(Entry e) {
        freedBlocks += blocks.drop(e.column);
        if (e.parent != null) {
            e.parent.children--;
        }
        heldBlocks -= 2L * tables;
        evictedBlocks += 2L * tables;
        store.prefixCachedBlocks.addAndGet(-2L * tables);
        store.prefixEvictedBlocks.add(2L * tables);
        return 2L * tables;
    }

    private void dropAll() {
        for (Entry e : entries.values()) {
            drop(e);
        }
        entries.clear();
    }

    /** The pressure handler: evict unreferenced entries until the refused request's shortfall is covered. */
    private boolean relieve(MemoryPressure pressure) {
        synchronized (this) {
            if (closed) {
                return false;
            }
            long blockBytes = Math.min(store.layout().keyBlockBytes(), store.layout().valueBlockBytes());
            long before = freedBlocks;
            evictLru(blocksFor(pressure.shortfallBytes(), blockBytes), Set.of());
            return freedBlocks > before;
        }
    }

    /** Whole blocks covering {@code bytes}, without overflow for {@code Long.MAX_VALUE}. */
    private static long blocksFor(long bytes, long blockBytes) {
        return bytes / blockBytes + (bytes % blockBytes == 0 ? 0 : 1);
    }

    private void checkOpen() {
        if (closed) {
            throw new ClosedException("prefix cache");
        }
    }

    /** Chained block hash: 64-bit multiply-xorshift mixing of (parent hash, salt, tokens). Not cryptographic. */
    static long blockHash(long parent, long salt, int[] tokens, int from, int n) {
        long h = mix(parent ^ 0x9E3779B97F4A7C15L) ^ mix(salt + 0x632BE59BD9B4E019L);
        for (int i = 0; i < n; i++) {
            h = mix(h ^ (tokens[from + i] & 0xFFFFFFFFL) ^ ((long) i << 32));
        }
        return mix(h ^ n);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
