package io.kvslab.cache;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.memory.CompactionResult;
import io.kvslab.memory.SlabAllocator;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * An off-heap KV cache: one slab allocator, one layout, many sequences.
 *
 * <h2>Concurrency contract</h2>
 * <ul>
 *   <li>The store is thread-safe: sequences may be created, used and closed from any thread, and different
 *       sequences may be mutated concurrently (the allocator is guarded by its own monitor).</li>
 *   <li>A {@link Sequence} has one writer at a time. Concurrent reads of one sequence (attention, read views) are
 *       fine; a read concurrent with a write to the <em>same</em> sequence is not. Forked sequences share blocks
 *       safely: shared blocks are never written (copy-on-write).</li>
 *   <li>{@link #compact()} and {@link #close()} are exclusive: they wait until no sequence operation or
 *       {@link #readAccess()} region is in progress, and block new ones meanwhile.</li>
 * </ul>
 */
public final class KvStore implements AutoCloseable {
    private final KvLayout layout;
    private final StoreConfig config;
    final SlabAllocator allocator;
    /** Sequence operations hold the read lock; compaction and close hold the write lock. */
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final Set<Sequence> open = ConcurrentHashMap.newKeySet();
    private final AtomicLong nextSequenceId = new AtomicLong();
    /** Mirrors the allocator's relocation epoch; read without locking by address caches. */
    volatile long relocationEpoch;
    private volatile boolean closed;

    private KvStore(KvLayout layout, StoreConfig config) {
        this.layout = layout;
        this.config = config;
        this.allocator = new SlabAllocator(layout.blockBytes(), config.slabBytes(), config.limitBytes());
    }

    /** A store without a memory limit. */
    public static KvStore open(KvLayout layout) {
        return open(layout, StoreConfig.defaults());
    }

    public static KvStore open(KvLayout layout, StoreConfig config) {
        if (layout == null || config == null) {
            throw new KvArgumentException("layout and config must not be null");
        }
        if (config.limitBytes() < layout.blockBytes()) {
            throw new KvArgumentException("limitBytes (" + config.limitBytes() + ") must hold at least one block ("
                    + layout.blockBytes() + " bytes)");
        }
        return new KvStore(layout, config);
    }

    public KvLayout layout() {
        return layout;
    }

    public StoreConfig config() {
        return config;
    }

    /** A new, empty sequence. */
    public Sequence newSequence() {
        ReentrantReadWriteLock.ReadLock r = enter();
        try {
            Sequence s = new Sequence(this, nextSequenceId.getAndIncrement());
            open.add(s);
            return s;
        } finally {
            r.unlock();
        }
    }

    public StoreStats stats() {
        return new StoreStats(allocator.stats(), open.size());
    }

    /**
     * Moves blocks out of sparse slabs and returns emptied slabs to the OS. Block handles stay valid; cached block
     * addresses are refreshed lazily. Waits for in-flight sequence operations.
     */
    public CompactionResult compact() {
        if (lock.getReadHoldCount() > 0) {
            throw new KvSlabException("compact() called inside a readAccess() region or sequence operation; "
                    + "it needs exclusive access");
        }
        lock.writeLock().lock();
        try {
            checkOpen();
            CompactionResult r = allocator.compact();
            relocationEpoch = allocator.relocationEpoch();
            return r;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Pins block addresses for a native read (for example an attention kernel call): compaction and close wait
     * until the returned access is closed. Use in try-with-resources; keep it short.
     */
    public ReadAccess readAccess() {
        return new ReadAccess(enter());
    }

    /** Holds the store's shared lock; closing releases it. */
    public static final class ReadAccess implements AutoCloseable {
        private final ReentrantReadWriteLock.ReadLock lock;
        private boolean released;

        private ReadAccess(ReentrantReadWriteLock.ReadLock lock) {
            this.lock = lock;
        }

        @Override
        public void close() {
            if (!released) {
                released = true;
                lock.unlock();
            }
        }
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Returns all native memory to the OS. If sequences still held blocks, throws {@link LeakedBlocksException}
     * after freeing them (their sequences become unusable). Closing twice is a no-op.
     */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            int openSequences = open.size();
            for (Sequence s : open) {
                s.markClosedByStore();
            }
            open.clear();
            long live = allocator.closeAndCountLive();
            if (live > 0) {
                throw new LeakedBlocksException(live, live * layout.blockBytes(), openSequences);
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    // ---- used by Sequence ----

    ReentrantReadWriteLock.ReadLock enter() {
        ReentrantReadWriteLock.ReadLock r = lock.readLock();
        r.lock();
        if (closed) {
            r.unlock();
            throw new ClosedException("store");
        }
        return r;
    }

    void checkOpen() {
        if (closed) {
            throw new ClosedException("store");
        }
    }

    void unregister(Sequence s) {
        open.remove(s);
    }

    Sequence registerFork(Sequence s) {
        open.add(s);
        return s;
    }

    long nextSequenceId() {
        return nextSequenceId.getAndIncrement();
    }
}
