package io.kvslab;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;

import io.kvslab.internal.table.RequesterMutationException;
import io.kvslab.internal.table.SequenceTables;
import io.kvslab.internal.table.TableHost;
import io.kvslab.internal.table.TableStore;
import io.kvslab.internal.jfr.CompactionEvent;
import io.kvslab.internal.jfr.CompressionEvent;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.internal.jfr.MemoryPressureEvent;
import io.kvslab.metrics.StoreMetrics;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Predicate;

/**
 * An off-heap KV cache: one slab allocator, one layout, many sequences.
 *
 * <h2>Concurrency contract</h2>
 * <ul>
 *   <li>The store is thread-safe: sequences may be created, used and closed from any thread, and different
 *       sequences may be mutated concurrently (the allocator is guarded by its own monitor).</li>
 *   <li>Each {@link Sequence} has a read-write lock: reads of its block memory (attention, row reads, snapshot
 *       reads) share it for the whole native call or copy; mutations (append, keep, remove, alias, close) take
 *       it exclusively, so a close or eviction racing a decode waits until the decode returned. Forked sequences
 *       share blocks safely: shared blocks are never written (copy-on-write).</li>
 *   <li>{@link #compact()} and {@link #close()} are exclusive: they wait until no sequence operation or
 *       {@link #readAccess()} region is in progress, and block new ones meanwhile. Called on a thread that holds
 *       a {@link #readAccess()} or runs a pressure handler, they fail at once instead of deadlocking.</li>
 *   <li>Lock order: store lock, then one sequence lock, then a prefix cache's monitor, then the allocator's
 *       monitor. Pressure handlers run on the allocating thread, which holds its own sequence's write lock;
 *       they may touch other sequences only without waiting (see {@link MemoryPressure#tryKeep}).</li>
 * </ul>
 */
public final class KvStore implements AutoCloseable {
    static {
        io.kvslab.internal.table.TableAccess.installStore(s -> s.tables);
    }

    /** Handler rounds per allocation before the store gives up with {@link MemoryLimitExceededException}. */
    public static final int MAX_PRESSURE_ROUNDS = 4;
    /** Set while this thread runs pressure handlers: their own allocations must not call the handlers again. */
    private static final ThreadLocal<boolean[]> IN_PRESSURE_HANDLER = ThreadLocal.withInitial(() -> new boolean[1]);

    private final KvLayout layout;
    private final StoreConfig config;
    /** The allocator and the store-wide lock: sequence operations hold its shared side, compaction and close its
     * exclusive side. */
    final TableStore tables;
    private final Map<Long, Sequence> open = new ConcurrentHashMap<>();
    /** The block tables' view of this store: its shared lock, pressure relief and counters. */
    private final TableHost host = new Host();

    private final AtomicLong nextSequenceId = new AtomicLong();
    private final List<Predicate<MemoryPressure>> pressureHandlers = new CopyOnWriteArrayList<>();
    // Event counters for metrics(); LongAdder because writers on many threads bump them.
    final LongAdder rowsEvicted = new LongAdder();
    final LongAdder rowsRemoved = new LongAdder();
    final LongAdder compactions = new LongAdder();
    final LongAdder blocksMoved = new LongAdder();
    final LongAdder prefixHitBlocks = new LongAdder();
    final LongAdder prefixMissBlocks = new LongAdder();
    final LongAdder prefixEvictedBlocks = new LongAdder();
    final AtomicLong prefixCachedBlocks = new AtomicLong();
    final LongAdder pressureEvents = new LongAdder();
    final LongAdder pressureRelieved = new LongAdder();
    /** The scheduler-facing reservation bookkeeping, created by {@link KvCacheManager#of} (null until then). */
    volatile KvCacheManager cacheManager;

    private KvStore(KvLayout layout, StoreConfig config) {
        this.layout = layout;
        this.config = config;
        this.tables = new TableStore(layout, config, host);
    }

    /**
     * A store without a memory limit.
     *
     * @param layout the geometry and element type of every block
     * @return a new, open store; close it when done
     */
    public static KvStore open(KvLayout layout) {
        return open(layout, StoreConfig.defaults());
    }

    /**
     * A store with the given memory limit and slab size.
     *
     * @param layout the geometry and element type of every block
     * @param config memory limit and slab size
     * @return a new, open store; close it when done
     */
    public static KvStore open(KvLayout layout, StoreConfig config) {
        if (layout == null || config == null) {
            throw new KvArgumentException("layout and config must not be null");
        }
        long largest = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        if (config.limitBytes() < largest) {
            throw new KvArgumentException("limitBytes (" + config.limitBytes() + ") must hold at least one block ("
                    + largest + " bytes)");
        }
        return new KvStore(layout, config);
    }

    /**
     * The geometry and element type of every sequence of this store.
     *
     * @return the layout given to {@link #open}
     */
    public KvLayout layout() {
        return layout;
    }

    /**
     * The memory limit and slab size this store was opened with.
     *
     * @return the configuration given to {@link #open}
     */
    public StoreConfig config() {
        return config;
    }

    /**
     * A new, empty sequence.
     *
     * @return the new sequence; the caller closes it
     */
    public Sequence newSequence() {
        enter();
        try {
            long id = nextSequenceId.getAndIncrement();
            Sequence s = new Sequence(this, new SequenceTables(tables, layout, id));
            open.put(id, s);
            return s;
        } finally {
            exit();
        }
    }

    /** A new sequence sharing every block of {@code parent} (see {@link Sequence#fork()}). */
    Sequence fork(Sequence parent) {
        enter();
        try {
            long id = nextSequenceId.getAndIncrement();
            Sequence child = new Sequence(this, parent.tables.fork(id));
            open.put(id, child);
            return child;
        } finally {
            exit();
        }
    }

    /**
     * Swaps a sequence back in from its tier ({@link Sequence#swapOut}): a new sequence (new id) bitwise equal to
     * the one swapped out. Its blocks are reserved first (memory-pressure handlers may run, as for any allocation),
     * then every record is read and verified (format checks, and that it is exactly the record written); on
     * success the records are removed from the tier and the handle is used up.
     *
     * @param swapped the handle {@link Sequence#swapOut} returned, still open
     * @return the restored sequence; the caller closes it
     * @throws io.kvslab.tier.TierRecordException if a record is missing or fails a check: the reserved blocks are
     *     freed, the store is unchanged and the handle stays open (close it and recompute)
     * @throws MemoryLimitExceededException if the blocks do not fit: the handle stays open (retry later)
     * @throws ClosedException if the handle was swapped in or closed already
     * @throws KvArgumentException if the handle is not from {@code swapOut} or its layout differs from this store's
     */
    public Sequence swapIn(io.kvslab.tier.SwappedSequence swapped) {
        return io.kvslab.internal.tier.Swap.swapIn(this, swapped);
    }

    /**
     * The allocator's accounting (reserved, live and peak bytes, slabs acquired and released, occupancy) and the number
     * of open sequences.
     *
     * @return a snapshot of the counters
     */
    public StoreStats stats() {
        return StoreStats.of(tables.stats(), open.size());
    }

    /**
     * Memory, slab occupancy, event counters and a view of every open sequence. Sequence-level values are read
     * without stopping the sequences' writers: take the snapshot between decode steps for exact numbers.
     *
     * @return the snapshot
     */
    public StoreMetrics metrics() {
        return MetricsCollector.store(this);
    }

    /**
     * The open sequences (restored, forked and new ones), in id order.
     *
     * @return a new list; sequences opened or closed later do not change it
     */
    public List<Sequence> sequences() {
        List<Sequence> list = new ArrayList<>(open.values());
        list.sort(Comparator.comparingLong(Sequence::id));
        return list;
    }

    /**
     * Registers a handler that may free memory when an allocation would exceed the limit; handlers run in
     * registration order until one reports that it freed memory, then the allocation is retried.
     *
     * @param handler the handler, not null: returns {@code true} if it freed memory; it runs on the thread whose
     *         allocation hit the limit and follows the rules in {@link MemoryPressure}
     */
    public void addPressureHandler(Predicate<MemoryPressure> handler) {
        if (handler == null) {
            throw new KvArgumentException("handler must not be null");
        }
        pressureHandlers.add(handler);
    }

    /**
     * Unregisters a handler; returns whether it was registered.
     *
     * @param handler a registered handler
     * @return {@code true} if it was registered
     */
    public boolean removePressureHandler(Predicate<MemoryPressure> handler) {
        return pressureHandlers.remove(handler);
    }

    /**
     * Moves blocks out of sparse slabs and returns emptied slabs to the OS. Waits for in-flight sequence operations
     * and reads (kernels build their address arrays per call, so nothing holds a stale address).
     *
     * @return blocks moved, slabs released and bytes returned
     */
    public CompactionResult compact() {
        refuseReentry("compact()");
        checkOpen();
        {
            CompactionEvent event = Jfr.recording() ? new CompactionEvent() : null;
            if (event != null) {
                event.begin();
            }
            CompactionResult r = tables.compact();
            compactions.increment();
            blocksMoved.add(r.blocksMoved());
            if (event != null && event.shouldCommit()) {
                event.blocksMoved = r.blocksMoved();
                event.bytesMoved = r.bytesMoved();
                event.slabsReleased = r.slabsReleased();
                event.bytesReleased = r.bytesReleased();
                event.reservedBytesAfter = tables.reservedBytes();
                event.commit();
            }
            return r;
        }
    }

    /**
     * Holds the store's shared lock: compaction and close wait until the returned access is closed (calling them
     * on this thread meanwhile throws). Attention and row reads need no read access of their own (they hold the
     * sequence's read lock themselves); use it to keep the store's layout stable across several calls, in
     * try-with-resources, on one thread, briefly.
     *
     * @return the access; close it on this thread
     */
    public ReadAccess readAccess() {
        enter();
        return new ReadAccess(this);
    }

    /**
     * A held read access to a store (see {@link KvStore#readAccess()}); closing it releases the store's shared lock.
     * Close it on the thread that opened it; closing twice is a no-op.
     *
     * Holds the store's shared lock; closing releases it (on the thread that took it).
     */
    public static final class ReadAccess implements AutoCloseable {
        private final KvStore store;
        private final Thread owner = Thread.currentThread();
        private boolean released;

        private ReadAccess(KvStore store) {
            this.store = store;
        }

        @Override
        public void close() {
            if (Thread.currentThread() != owner) {
                throw new ConcurrentUseException("a ReadAccess must be closed by the thread that opened it");
            }
            if (!released) {
                released = true;
                store.exit();
            }
        }
    }

    /**
     * Whether {@link #close()} was called. A closed store rejects new sequences and allocations with {@link
     * ClosedException}.
     *
     * @return {@code true} once closed
     */
    public boolean isClosed() {
        return tables.isClosed();
    }

    /**
     * Returns all native memory to the OS. If sequences still held blocks, throws {@link LeakedBlocksException}
     * after freeing them (their sequences become unusable). Closing twice is a no-op.
     */
    @Override
    public void close() {
        if (tables.isClosed()) {
            return;
        }
        refuseReentry("close()");
        int[] openSequences = new int[1];
        long live = tables.close(() -> {
            openSequences[0] = open.size();
            for (Sequence s : open.values()) {
                s.tables.markClosedByStore();
            }
            open.clear();
        });
        if (live > 0) {
            throw new LeakedBlocksException(live, live / 2 * layout.blockPairBytes() + live % 2 * layout.keyBlockBytes(),
                    openSequences[0], prefixCachedBlocks.get());
        }
    }

    /** Exclusive operations wait for every shared holder: on a thread that is one, they would wait for ever. */
    private void refuseReentry(String what) {
        if (IN_PRESSURE_HANDLER.get()[0]) {
            throw new KvSlabException(what + " called inside a memory-pressure handler; the allocating thread holds "
                    + "the store's shared lock, so it cannot take exclusive access");
        }
        if (tables.sharedHoldCount() > 0) {
            throw new KvSlabException(what + " called inside a readAccess() region or sequence operation; "
                    + "it needs exclusive access (close the read access first)");
        }
    }

    // ---- used by the block tables ----

    /** The store side of {@link SequenceTables}: shared lock, pressure relief, counters. */
    private final class Host implements TableHost {
        @Override
        public boolean inPressureHandler() {
            return IN_PRESSURE_HANDLER.get()[0];
        }

        @Override
        public boolean relieve(long requesterId, MemoryLimitExceededException refused, int attempt) {
            return relievePressure(requesterId < 0 ? null : open.get(requesterId), refused, attempt);
        }

        @Override
        public void compressed(long sequenceId, int layer, int kvHead, int rowsBefore, int rowsAfter,
                               int blocksBefore, int blocksAfter) {
            recordCompression(sequenceId, layer, kvHead, rowsBefore, rowsAfter, blocksBefore, blocksAfter);
        }

        @Override
        public void removed(long rows) {
            rowsRemoved.add(rows);
        }

        @Override
        public void appended(long sequenceId, int blocks) {
            KvCacheManager m = cacheManager;
            if (m != null) {
                m.appended(sequenceId, blocks);
            }
        }

        @Override
        public void closed(long sequenceId) {
            open.remove(sequenceId);
            KvCacheManager m = cacheManager;
            if (m != null) {
                m.closed(sequenceId);
            }
        }
    }

    private boolean relievePressure(Sequence requester, MemoryLimitExceededException refused, int attempt) {
        boolean[] inHandler = IN_PRESSURE_HANDLER.get();
        if (attempt > MAX_PRESSURE_ROUNDS || pressureHandlers.isEmpty() || inHandler[0]) {
            return false;
        }
        pressureEvents.increment();
        MemoryPressureEvent event = Jfr.recording() ? new MemoryPressureEvent() : null;
        if (event != null) {
            event.begin();
        }
        // Free slots in held slabs plus whole blocks that still fit under the limit (slabs hold whole blocks).
        long blockBytes = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        long available = (refused.reservedBytes() - refused.liveBytes())
                + (refused.limitBytes() - refused.reservedBytes()) / blockBytes * blockBytes;
        long shortfall = Math.max(blockBytes, refused.requestedBytes() - available);
        MemoryPressure pressure = new MemoryPressure(this, requester, refused.requestedBytes(), shortfall,
                refused.limitBytes(), refused.liveBytes(), refused.reservedBytes(), attempt);
        int modCount = requester == null ? 0 : requester.tables.modCount();
        boolean relieved = false;
        inHandler[0] = true;
        try {
            for (Predicate<MemoryPressure> handler : pressureHandlers) {
                if (handler.test(pressure)) {
                    relieved = true;
                    break;
                }
            }
        } catch (RequesterMutationException e) {
            throw e;   // a broken handler, not a memory shortage: say so
        } catch (RuntimeException e) {
            refused.addSuppressed(e);
            throw refused;
        } finally {
            inHandler[0] = false;
            if (event != null && event.shouldCommit()) {
                event.requestedBytes = refused.requestedBytes();
                event.shortfallBytes = pressure.shortfallBytes();
                event.liveBytesBefore = refused.liveBytes();
                event.liveBytesAfter = tables.liveBytes();
                event.attempt = attempt;
                event.relieved = relieved;
                event.commit();
            }
        }
        if (requester != null && requester.tables.modCount() != modCount) {
            throw new KvSlabException("a memory-pressure handler mutated or closed sequence " + requester.id()
                    + ", whose own allocation it was called for; handlers must skip MemoryPressure.requester()");
        }
        if (relieved) {
            pressureRelieved.increment();
        }
        return relieved;
    }

    void recordCompression(long sequenceId, int layer, int kvHead, int rowsBefore, int rowsAfter, int blocksBefore,
                           int blocksAfter) {
        rowsEvicted.add(rowsBefore - rowsAfter);
        if (!Jfr.recording()) {
            return;
        }
        CompressionEvent event = new CompressionEvent();
        if (event.shouldCommit()) {
            event.sequenceId = sequenceId;
            event.layer = layer;
            event.kvHead = kvHead;
            event.rowsBefore = rowsBefore;
            event.rowsAfter = rowsAfter;
            event.bytesFreed = (blocksBefore - blocksAfter) * layout.blockPairBytes();
            event.commit();
        }
    }

    /** Takes the store's shared lock; throws {@link ClosedException} if the store is closed. */
    void enter() {
        tables.enterShared();
    }

    void exit() {
        tables.exitShared();
    }

    void checkOpen() {
        if (tables.isClosed()) {
            throw new ClosedException("store");
        }
    }

}
