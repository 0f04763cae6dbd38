package io.kvslab.internal.table;

import io.kvslab.ClosedException;
import io.kvslab.CompactionResult;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.StoreConfig;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A store's allocator together with the store-wide lifetime lock: every table operation and block read holds its
 * shared side (through {@link SequenceTables}); compaction (moves blocks) and close (unmaps every slab) take its
 * exclusive side here, so they can never run under a sequence operation or a kernel. The allocator is created
 * inside and never handed out: block tables can only be built on a {@code TableStore}, so nothing can compact or
 * close their allocator without this lock.
 */
public final class TableStore {
    final SlabAllocator allocator;
    final TableHost host;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile boolean closed;

    public TableStore(KvLayout layout, StoreConfig config, TableHost host) {
        this.allocator = new SlabAllocator(layout.keyBlockBytes(), layout.valueBlockBytes(), config.slabBytes(),
                config.limitBytes(),
                config.spareSlabBytes());
        this.host = host;
    }

    /** Takes the shared lock; throws {@link ClosedException} (nothing held) if the store is closed. */
    public void enterShared() {
        lock.readLock().lock();
        if (closed) {
            lock.readLock().unlock();
            throw new ClosedException("store");
        }
    }

    /** Releases one shared hold of the calling thread. */
    public void exitShared() {
        lock.readLock().unlock();
    }

    /** Shared holds of the calling thread (an exclusive operation on such a thread would wait for itself). */
    public int sharedHoldCount() {
        return lock.getReadHoldCount();
    }

    public boolean isClosed() {
        return closed;
    }

    /** Compacts the allocator under the exclusive lock (waits for every shared holder). */
    public CompactionResult compact() {
        refuseReentry("compact()");
        lock.writeLock().lock();
        try {
            if (closed) {
                throw new ClosedException("store");
            }
            return allocator.compact();
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Under the exclusive lock: runs {@code whileExclusive}, then returns every slab to the OS. Returns the blocks
     * that were still live, or -1 if the store was closed already.
     */
    public long close(Runnable whileExclusive) {
        refuseReentry("close()");
        lock.writeLock().lock();
        try {
            if (closed) {
                return -1;
            }
            closed = true;
            whileExclusive.run();
            return allocator.closeAndCountLive();
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** An exclusive operation on a thread holding the shared side would wait for itself for ever. */
    private void refuseReentry(String what) {
        if (lock.getReadHoldCount() > 0) {
            throw new KvSlabException(what + " needs exclusive access but this thread holds the store's shared "
                    + "lock (inside readAccess(), a sequence operation or a pressure handler)");
        }
    }

    public AllocatorStats stats() {
        return allocator.stats();
    }

    public long[] blocksByOccupancy() {
        return allocator.blocksByOccupancy();
    }

    public long liveBlocks() {
        return allocator.liveBlocks();
    }

    public long reservedBytes() {
        return allocator.reservedBytes();
    }

    /** Bytes of the live blocks, K and V size classes summed. */
    public long liveBytes() {
        return allocator.liveBytes();
    }
}
