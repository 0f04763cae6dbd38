package io.kvslab.internal.table;

import io.kvslab.CompactionResult;
import io.kvslab.MemoryLimitExceededException;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.internal.jfr.SlabAcquireEvent;
import io.kvslab.internal.jfr.SlabReleaseEvent;

import io.kvslab.StoreConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Fixed-size native blocks carved from a few large slabs.
 *
 * <p><b>Handles.</b> A block is named by a {@code long} handle: a stable block id (low 32 bits) and the id's
 * generation (high 32 bits). Compaction may move a block to another slab, but its handle stays valid: callers
 * re-read {@code address(long)} after a compaction (see {@link #relocationEpoch()}). Freeing bumps the generation,
 * so a stale handle is rejected instead of silently aliasing a newer block.
 *
 * <p><b>Reference counts.</b> A block starts with one reference; {@code addReference} adds one (prefix sharing,
 * forks, cross-layer key sharing), {@code release} drops one and frees the block at zero.
 *
 * <p><b>Visibility.</b> Every method that takes or returns a block handle, an address or a block's memory is
 * package-private: only the block tables of this package ({@link SequenceTables}) hold handles, and they read
 * block memory under their sequence's lifetime lock.
 *
 * <p><b>Debug poisoning.</b> With {@code -Dkvslab.debug.poisonFreed=true} (read once, at class load) every freed
 * block is filled with 0xFF bytes (NaN in f32, f16 and bf16) and empty slabs are kept instead of unmapped, so
 * freed memory is reused at once: a read racing a free would then see NaN rather than fault. Tests use it as a
 * no-silent-corruption oracle.
 *
 * <p><b>Occupancy bins.</b> Non-full slabs sit in bins by fill fraction. Allocation takes from the fullest bin, so
 * sparse slabs drain; {@link #compact()} moves the blocks of the sparsest slabs into fuller ones and returns the
 * emptied slabs to the OS.
 *
 * <p><b>Spare slabs.</b> A slab that empties stays mapped as a spare while the empty slabs total at most
 * {@code spareSlabBytes}; allocation takes spares before mapping a new slab, so a compression that frees slabs and
 * the appends that refill them reuse the same memory. {@link #compact()} and close return every spare to the OS.
 *
 * <p><b>Memory.</b> Slabs are mapped by {@link SlabMemory} (zero pages from the kernel, faulted in where blocks
 * are written; no zeroing in Java) and scoped to one shared arena per allocator: unmapping a slab needs no thread
 * handshake, and closing the allocator invalidates every segment it handed out. A slab given up by a compaction or
 * beyond the spare bound leaves the accounting at once and is unmapped by the {@link SlabReclaimer}'s background
 * thread (the kernel freeing its pages costs milliseconds); close waits for those still in flight. Reused slots hold stale bytes;
 * readers read only rows below a table's length, which every such row's writer has written.
 *
 * <p><b>Size classes.</b> An allocator carves one block size per slab and may have two size classes: a store whose
 * K and V rows differ in bytes (K q8_0, V q4_0) allocates K blocks from class {@link #KEY_CLASS} and V blocks from
 * {@link #VALUE_CLASS}, each from slabs of its own block size, so every block is exactly as large as its rows need.
 * A handle's id records its slab, so every call that takes a handle (reference counts, segments, addresses,
 * release) needs no class argument; only allocation names one. Both classes share the one limit, the accounting
 * (live bytes are the sum over classes) and compaction (blocks move within their class). With one class (K and V
 * rows of the same size) both class numbers name it.
 *
 * <p><b>Limit.</b> {@code limitBytes} caps the reserved (slab) bytes. An allocation that cannot be served under it
 * throws {@link MemoryLimitExceededException} and allocates nothing.
 *
 * <p><b>Threads.</b> Every method is thread-safe. Slabs, bins and free lists sit behind one monitor; the paths a
 * serving loop hits per block do not take it: reference counts are one compare-and-set on a per-id state word
 * ({@link BlockIds}, spread so that ids taken one after the other sit on different cache lines), addresses and
 * segments are read lock-free, and a single-block {@code release} that frees a block parks it in a
 * per-thread-stripe cache ({@link ParkedBlocks}: a bounded number of stripes chosen by thread id, so virtual threads
 * share them instead of each owning one, each behind a one-word spin lock; a thread that finds its stripe held by
 * another moves on to the next one, so two threads meet on a stripe once, not on every call) from which the next single-block
 * {@code allocate}, or small bulk {@code allocate(long[], k, v)} (an append's call), of that stripe takes it again.
 * A stripe that runs empty is refilled, and one that runs full is half flushed, {@link #REFILL} blocks at a time in
 * one monitor entry, as a thread cache's magazines are; a refill takes only free slots of slabs already in use, so it
 * never maps a slab. Parked blocks are drained back into their slabs before a compaction, at close, before an
 * allocation is refused for the limit, and for exact statistics; so they never cause a limit failure, and live
 * counts and {@link #closeAndCountLive()} stay exact. (The peak of live bytes takes in blocks handed out from a
 * stripe through its low-water mark, at the next monitor entry: exact for one thread, possibly high under threads.)
 * Writing into a block's memory is the caller's business; {@link #compact()} must not run while another thread
 * reads or writes block memory (the cache layer guarantees that with its store lock).
 */
public final class SlabAllocator implements AutoCloseable {
    /** Fill freed blocks with NaN bytes and never unmap slabs early; see the class comment. */
    static final boolean POISON_FREED = Boolean.getBoolean("kvslab.debug.poisonFreed");
    /** Occupancy bins: 0 = empty, 1..4 = fill quartiles of non-full slabs, 5 = full. */
    static final int BINS = 6;
    private static final int BIN_EMPTY = 0;
    private static final int BIN_FULL = BINS - 1;
    /** Freed blocks one stripe keeps for reuse: enough for a decode step's block turnover, small next to a slab. */
    static final int PARKED_PER_STRIPE = 32;
    /** Blocks a stripe's slow path moves at once: taken from slabs when it is empty, returned when it is full. */
    static final int REFILL = PARKED_PER_STRIPE / 2;
    /** Thread-id slots that each remember a stripe (a power of two, more than the stripes so that ids collide rarely). */
    private static final int SLOTS = 256;

    /** The generation half of a handle or state word. */
    private static final long GENERATION_BITS = 0xFFFFFFFF_00000000L;

    /** Class of K blocks; also of V blocks when the allocator has one class. */
    static final int KEY_CLASS = 0;
    /** Class of V blocks: 1 when the allocator has two classes, else {@link #KEY_CLASS}. */
    static final int VALUE_CLASS = 1;

    /** Block bytes of class 0 (and, when there is only one class, of every block). */
    private final long blockBytes;
    private final int blocksPerSlab;
    /** Bytes and blocks per full slab of each size class. */
    private final long[] classBytes;
    private final int[] classBlocksPerSlab;
    private final long limitBytes;
    private final long spareSlabBytes;
    private final Arena scope = Arena.ofShared();

    private final List<Slab> slabs = new ArrayList<>();           // by slab index; null once released
    /** Copy of {@link #slabs} for lock-free lookup from a live block's slab index (republished on every change). */
    private volatile Slab[] slabTable = new Slab[0];
    /** Occupancy bins per size class: {@code bins[sizeClass][bin]}. */
    private final List<Slab>[][] bins;

    /** Per block id (stable across relocation): state word, slab, slot, address. */
    private final BlockIds ids = new BlockIds();
    /** Parked-block stripes, each with a stack per size class. */
    private final ParkedBlocks[] stripes;
    private final int stripeMask;
    /**
     * The stripe each thread-id slot uses ({@code threadId & (SLOTS - 1)}): at first {@code slot & stripeMask}, moved
     * on by a thread that finds its stripe locked, so that two threads whose ids fall on one stripe part after their
     * first collision instead of sharing a lock for good. Racy on purpose: a lost or stale write only costs another
     * collision, and any thread may use any stripe.
     */
    private final int[] stripeOfSlot = new int[SLOTS];
    private int idsIssued;
    private int[] freeIds = new int[1024];
    private int freeIdCount;

    private long reservedBytes;
    /** Slots taken in slabs: live blocks plus parked ones (all classes, and per class). */
    private long takenBlocks;
    private final long[] takenByClass;
    private long peakReservedBytes;
    private long peakLiveBytes;
    private long slabsAcquired;
    private long slabsReleased;
    private volatile long relocationEpoch;
    /** Slabs handed to the {@link SlabReclaimer} and not yet known to be unmapped; close waits for them. */
    private final List<java.util.concurrent.Future<?>> reclaiming = new ArrayList<>();
    /** Slabs released during the current operation, handed to the reclaimer together at its end. */
    private final List<Slab> toReclaim = new ArrayList<>();
    private volatile boolean closed;

    /**
     * @param blockBytes  bytes per block, {@code > 0}
     * @param slabBytes   target bytes per slab; rounded down to whole blocks, at least one block
     * @param limitBytes  cap on reserved bytes, {@code >= blockBytes}; {@link Long#MAX_VALUE} for none
     */
    public SlabAllocator(long blockBytes, long slabBytes, long limitBytes) {
        this(blockBytes, slabBytes, limitBytes, StoreConfig.DEFAULT_SPARE_SLAB_BYTES);
    }

    /**
     * @param blockBytes      bytes per block, {@code > 0}
     * @param slabBytes       target bytes per slab; rounded down to whole blocks, at least one block
     * @param limitBytes      cap on reserved bytes, {@code >= blockBytes}; {@link Long#MAX_VALUE} for none
     * @param spareSlabBytes  empty slabs kept mapped for reuse up to this many bytes, {@code >= 0}
     */
    public SlabAllocator(long blockBytes, long slabBytes, long limitBytes, long spareSlabBytes) {
        this(blockBytes, blockBytes, slabBytes, limitBytes, spareSlabBytes);
    }

    /**
     * An allocator with a K and a V size class ({@link #KEY_CLASS}, {@link #VALUE_CLASS}); one class when the
     * two sizes are equal.
     *
     * @param keyBlockBytes   bytes per K block, {@code > 0}
     * @param valueBlockBytes bytes per V block, {@code > 0}
     * @param slabBytes       target bytes per slab; rounded down to whole blocks of its class, at least one block
     * @param limitBytes      cap on reserved bytes of both classes, {@code >= } the larger block
     * @param spareSlabBytes  empty slabs kept mapped for reuse up to this many bytes, {@code >= 0}
     */
    public SlabAllocator(long keyBlockBytes, long valueBlockBytes, long slabBytes, long limitBytes,
                         long spareSlabBytes) {
        if (valueBlockBytes <= 0) {
            throw new KvArgumentException("valueBlockBytes must be > 0, got " + valueBlockBytes);
        }
        long blockBytes = keyBlockBytes;
        if (spareSlabBytes < 0) {
            throw new KvArgumentException("spareSlabBytes must be >= 0, got " + spareSlabBytes);
        }
        if (blockBytes <= 0) {
            throw new KvArgumentException("blockBytes must be > 0, got " + blockBytes);
        }
        if (slabBytes <= 0) {
            throw new KvArgumentException("slabBytes must be > 0, got " + slabBytes);
        }
        long largest = Math.max(blockBytes, valueBlockBytes);
        if (limitBytes < largest) {
            throw new KvArgumentException("limitBytes must be >= one block (" + largest + " bytes), got " + limitBytes);
        }
        this.classBytes = blockBytes == valueBlockBytes ? new long[] {blockBytes}
                : new long[] {blockBytes, valueBlockBytes};
        int classes = classBytes.length;
        this.classBlocksPerSlab = new int[classes];
        for (int c = 0; c < classes; c++) {
            long perSlab = Math.max(1, slabBytes / classBytes[c]);
            if (perSlab > Integer.MAX_VALUE / 2) {
                throw new KvArgumentException("slabBytes / blockBytes must be < 2^30 blocks per slab, got " + perSlab);
            }
            classBlocksPerSlab[c] = (int) perSlab;
        }
        this.blockBytes = blockBytes;
        this.blocksPerSlab = classBlocksPerSlab[0];
        this.limitBytes = limitBytes;
        this.spareSlabBytes = spareSlabBytes;
        this.takenByClass = new long[classes];
        @SuppressWarnings("unchecked")
        List<Slab>[][] b = new List[classes][BINS];
        this.bins = b;
        for (int c = 0; c < classes; c++) {
            for (int i = 0; i < BINS; i++) {
                bins[c][i] = new ArrayList<>();
            }
        }
        int n = Integer.highestOneBit(Math.max(8, 2 * Runtime.getRuntime().availableProcessors()) * 2 - 1);
        this.stripes = new ParkedBlocks[Math.min(n, 256)];
        this.stripeMask = stripes.length - 1;
        for (int i = 0; i < stripes.length; i++) {
            stripes[i] = new ParkedBlocks(PARKED_PER_STRIPE, classBytes[0], classes == 1 ? 0 : classBytes[1]);
        }
        for (int i = 0; i < SLOTS; i++) {
            stripeOfSlot[i] = i & stripeMask;
        }
    }

    /** Bytes of a K block (of every block when the allocator has one size class). */
    public long blockBytes() {
        return blockBytes;
    }

    /** Bytes of a block of {@code sizeClass} ({@link #KEY_CLASS} or {@link #VALUE_CLASS}). */
    public long blockBytes(int sizeClass) {
        return classBytes[index(sizeClass)];
    }

    /** Size classes: 1, or 2 when K and V blocks differ in size. */
    public int sizeClasses() {
        return classBytes.length;
    }

    /** Slots taken by blocks of {@code sizeClass}, live or parked (exact: parked blocks are drained first). */
    public synchronized long liveBlocks(int sizeClass) {
        if (!closed) {
            drainParked();
        }
        return takenByClass[index(sizeClass)];
    }

    /** Bytes of the blocks held, summed over the size classes (parked blocks drained first). */
    public synchronized long liveBytes() {
        if (!closed) {
            drainParked();
        }
        return takenBytes();
    }

    private long takenBytes() {
        long bytes = 0;
        for (int c = 0; c < classBytes.length; c++) {
            bytes += takenByClass[c] * classBytes[c];
        }
        return bytes;
    }

    /** The class index a class number names: VALUE_CLASS is KEY_CLASS when there is one class. */
    private int index(int sizeClass) {
        if (sizeClass != KEY_CLASS && sizeClass != VALUE_CLASS) {
            throw new KvArgumentException("size class must be " + KEY_CLASS + " or " + VALUE_CLASS + ", got " + sizeClass);
        }
        return Math.min(sizeClass, classBytes.length - 1);
    }

    /** Blocks in a full-size slab. */
    public int blocksPerSlab() {
        return blocksPerSlab;
    }

    /** Increases whenever a compaction moved at least one block; cached addresses older than it are stale. */
    public long relocationEpoch() {
        return relocationEpoch;
    }

    /** Allocates one block (reference count 1): a parked block of this thread's stripe if any, else from a slab. */
    long allocate() {
        return allocate(KEY_CLASS);
    }

    /**
     * Allocates one block of {@code sizeClass}; see {@link #allocate()}. The fast path is one stripe lock round trip
     * and one release store of the state word: the stripe hands out the handle ready-made (the id's generation was
     * bumped when it was parked), and the count goes from 0 to 1 with a plain release store because nothing else
     * can write the word of a parked id (every handle of it is dead, so every compare-and-set on it fails).
     */
    long allocate(int sizeClass) {
        ensureOpen();
        int c = index(sizeClass);
        ParkedBlocks stripe = lockedStripe();
        long h = stripe.poll(c);
        stripe.unlock();
        if (h == 0) {
            return allocateAndRefill(c, stripe);
        }
        ids.setStateRelease((int) h, (h & GENERATION_BITS) | 1);
        return h;
    }

    /**
     * The slow path of a single-block allocation, the stripe being empty: one block from a slab, and (one monitor
     * entry for many later allocations) up to {@link #REFILL} more parked in the stripe, taken only from free slots
     * of slabs already in use, so a refill never maps a slab or raises the reserved bytes.
     */
    private synchronized long allocateAndRefill(int c, ParkedBlocks stripe) {
        ensureOpen();
        foldPeak();
        ensureCapacity(c, 1, 0);
        long h = allocateOne(c);
        refill(c, stripe);
        notePeak();
        return h;
    }

    /** Parks up to {@link #REFILL} free slots of class {@code c}'s slabs already in use in {@code stripe} (monitor held). */
    private void refill(int c, ParkedBlocks stripe) {
        if (POISON_FREED) {
            return;
        }
        stripe.lock();
        try {
            for (int k = 0; k < REFILL && stripe.count(c) < stripe.capacity(); k++) {
                Slab slab = fullestPartialSlab(c);
                if (slab == null) {
                    break;
                }
                stripe.offer(c, parkedHandle(takeSlot(c, slab)));
            }
        } finally {
            stripe.unlock();
        }
    }

    /** Allocates {@code n} blocks, all or nothing, into {@code out[0..n)}. */
    void allocate(long[] out, int n) {
        allocate(out, n, 0);
    }

    /**
     * Allocates, all or nothing, {@code keyBlocks} blocks of the K class into {@code out[0 .. keyBlocks)} and
     * {@code valueBlocks} of the V class after them. This is what an append that fills its tail blocks calls (a K
     * and a V block per KV head that needs one): up to {@link #REFILL} blocks come from this thread's stripe in one
     * lock round trip when it holds enough of each class (the single-block fast path, batched), else from the slabs
     * under the monitor, which then refills the stripe for the next such call.
     */
    void allocate(long[] out, int keyBlocks, int valueBlocks) {
        ensureOpen();
        if (keyBlocks < 0 || valueBlocks < 0 || (long) keyBlocks + valueBlocks > out.length) {
            throw new KvArgumentException("block counts must be >= 0 and sum to at most " + out.length + ", got "
                    + keyBlocks + " + " + valueBlocks);
        }
        if (keyBlocks + valueBlocks > REFILL || !takeParked(out, keyBlocks, valueBlocks)) {
            allocateFromSlabs(out, keyBlocks, valueBlocks);
        }
    }

    /** Takes all of a small bulk allocation from this thread's stripe, or nothing (false) when it holds too few. */
    private boolean takeParked(long[] out, int keyBlocks, int valueBlocks) {
        int v = index(VALUE_CLASS);
        int n = keyBlocks + valueBlocks;
        ParkedBlocks stripe = lockedStripe();
        boolean ok = v == KEY_CLASS ? stripe.count(KEY_CLASS) >= n
                : stripe.count(KEY_CLASS) >= keyBlocks && stripe.count(v) >= valueBlocks;
        if (ok) {
            for (int i = 0; i < keyBlocks; i++) {
                out[i] = stripe.poll(KEY_CLASS);
            }
            for (int i = keyBlocks; i < n; i++) {
                out[i] = stripe.poll(v);
            }
        }
        stripe.unlock();
        if (!ok) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            long h = out[i];
            ids.setStateRelease((int) h, (h & GENERATION_BITS) | 1);   // this thread owns the parked ids
        }
        return true;
    }

    /**
     * The monitor path of a bulk allocation: from the slabs (mapping slabs as needed, under the limit). A small one
     * (the shape of an append) first takes what this thread's stripe holds of each class, since those blocks hold
     * slab slots already (mapping a slab while they sat idle would raise the reserved bytes for nothing), and then
     * refills the stripe, so the next one takes the fast path.
     */
    private synchronized void allocateFromSlabs(long[] out, int keyBlocks, int valueBlocks) {
        ensureOpen();
        foldPeak();
        int v = index(VALUE_CLASS);
        int n = keyBlocks + valueBlocks;
        boolean small = n <= REFILL;
        ParkedBlocks stripe = small ? lockedStripe() : stripe();
        // blocks taken from the stripe: out[0 .. keyFromStripe) and out[keyBlocks .. keyBlocks + valueFromStripe)
        // (with one class, every block is class 0 and only the first run is used)
        int keyFromStripe = 0;
        int valueFromStripe = 0;
        if (small) {
            try {
                int keys = v == KEY_CLASS ? n : keyBlocks;
                while (keyFromStripe < keys && stripe.count(KEY_CLASS) > 0) {
                    out[keyFromStripe++] = stripe.poll(KEY_CLASS);
                }
                while (v != KEY_CLASS && valueFromStripe < valueBlocks && stripe.count(v) > 0) {
                    out[keyBlocks + valueFromStripe++] = stripe.poll(v);
                }
            } finally {
                stripe.unlock();
            }
        }
        try {
            if (v == KEY_CLASS) {
                ensureCapacity(KEY_CLASS, n - keyFromStripe, 0);
            } else {
                ensureCapacity(KEY_CLASS, keyBlocks - keyFromStripe, valueBlocks - valueFromStripe);
            }
        } catch (MemoryLimitExceededException e) {
            // all or nothing: the blocks taken from the stripe go back (to their slabs if it filled meanwhile), and
            // the whole request is checked again, so a refusal names what the caller asked for (the drain inside
            // returns those blocks to their slabs: the whole request fits exactly when the rest did)
            stripe.lock();
            try {
                for (int i = 0; i < keyFromStripe; i++) {
                    if (!stripe.offer(KEY_CLASS, out[i])) {
                        free((int) out[i]);
                    }
                }
                for (int i = keyBlocks; i < keyBlocks + valueFromStripe; i++) {
                    if (!stripe.offer(v, out[i])) {
                        free((int) out[i]);
                    }
                }
            } finally {
                stripe.unlock();
            }
            keyFromStripe = 0;
            valueFromStripe = 0;
            if (v == KEY_CLASS) {
                ensureCapacity(KEY_CLASS, n, 0);
            } else {
                ensureCapacity(KEY_CLASS, keyBlocks, valueBlocks);
            }
        }
        for (int i = 0; i < keyFromStripe; i++) {
            ids.setStateRelease((int) out[i], (out[i] & GENERATION_BITS) | 1);
        }
        for (int i = keyBlocks; i < keyBlocks + valueFromStripe; i++) {
            ids.setStateRelease((int) out[i], (out[i] & GENERATION_BITS) | 1);
        }
        if (v == KEY_CLASS) {
            for (int i = keyFromStripe; i < n; i++) {
                out[i] = allocateOne(KEY_CLASS);
            }
        } else {
            for (int i = keyFromStripe; i < keyBlocks; i++) {
                out[i] = allocateOne(KEY_CLASS);
            }
            for (int i = keyBlocks + valueFromStripe; i < n; i++) {
                out[i] = allocateOne(v);
            }
        }
        if (small) {
            if (keyBlocks > 0 || v == KEY_CLASS) {
                refill(KEY_CLASS, stripe);
            }
            if (valueBlocks > 0 && v != KEY_CLASS) {
                refill(v, stripe);
            }
        }
        notePeak();
    }

    /** Adds a reference to a live block. */
    void addReference(long handle) {
        ensureOpen();
        int id = checkId(handle);
        while (true) {
            long s = liveState(handle, id);
            if (BlockIds.references(s) == Integer.MAX_VALUE) {
                throw new KvSlabException("block " + id + " has reached the maximum reference count");
            }
            if (ids.compareAndSet(id, s, s + 1)) {
                return;
            }
        }
    }

    /**
     * Drops a reference; the block is freed when none is left. Returns the remaining count. Validates the handle as
     * {@link #checkId} and {@link #liveState} do (same exceptions), reading the page directory once: one volatile read
     * and one compare-and-set of the state word, plus one stripe lock round trip when the block is freed.
     */
    int release(long handle) {
        ensureOpen();
        int id = (int) handle;
        int gen = (int) (handle >>> 32);
        long[] words = ids.stateWords(id);
        if (words == null || gen <= 0) {
            throw notIssued(handle);
        }
        int at = BlockIds.stateIndex(id);
        while (true) {
            long s = BlockIds.state(words, at);
            if (BlockIds.generation(s) != gen || BlockIds.references(s) <= 0) {
                throw dead(handle, s);
            }
            int left = BlockIds.references(s) - 1;
            long next = left > 0 ? s - 1 : BlockIds.pack(BlockIds.nextGeneration(gen), 0);
            if (BlockIds.compareAndSet(words, at, s, next)) {
                if (left == 0) {
                    retire(next | id);
                }
                return left;
            }
        }
    }

    /**
     * A block whose last reference is gone (generation already bumped, so this thread owns the id), given as the
     * handle it will next be handed out under: parks it in this thread's stripe, or returns it to its slab when the
     * stripe is full.
     */
    private void retire(long parked) {
        int id = (int) parked;
        if (POISON_FREED) {
            poison(id);
        }
        int c = classBytes.length == 1 ? KEY_CLASS : slabTable[ids.slab(id)].sizeClass;
        ParkedBlocks stripe = lockedStripe();
        boolean ok = stripe.offer(c, parked);
        stripe.unlock();
        if (!ok) {
            flush(stripe, c, id);
        }
    }

    /** The handle a dead id (count 0) will next be handed out under: its current generation and the id. */
    private long parkedHandle(int id) {
        return (ids.state(id) & GENERATION_BITS) | id;
    }

    /**
     * The slow path of a release, the stripe being full: returns {@code id} and the {@link #REFILL} blocks the stripe
     * parked first (the coldest) to their slabs in one monitor entry, so the next releases of this stripe park again.
     */
    private synchronized void flush(ParkedBlocks stripe, int c, int id) {
        if (closed) {
            return;   // a release racing close: every slab is gone already
        }
        foldPeak();
        stripe.lock();
        try {
            freeOldest(stripe, c, Math.min(REFILL, stripe.count(c)));
        } finally {
            stripe.unlock();
        }
        free(id);
    }

    /**
     * Returns the {@code n} blocks a stripe parked first to their slabs, oldest first, so the free-id stack hands
     * the most recently used of them out first again (monitor and stripe lock held).
     */
    private void freeOldest(ParkedBlocks stripe, int c, int n) {
        for (int i = 0; i < n; i++) {
            free((int) stripe.handleAt(c, i));
        }
        stripe.dropOldest(c, n);
    }

    /** Drops one reference of each handle; validates all of them first so a bad one changes nothing. */
    synchronized void releaseAll(long[] handles, int from, int to) {
        ensureOpen();
        foldPeak();
        for (int i = from; i < to; i++) {
            checkLive(handles[i]);
        }
        // The same handle may appear twice only if it holds two references; undo everything if one runs out.
        for (int i = from; i < to; i++) {
            if (!decrement(handles[i])) {
                for (int j = from; j < i; j++) {
                    int id = (int) handles[j];
                    while (true) {
                        long s = ids.state(id);
                        if (ids.compareAndSet(id, s, s + 1)) {
                            break;
                        }
                    }
                }
                throw new InvalidBlockException("block " + (int) handles[i]
                        + " released more often than it was referenced");
            }
        }
        for (int i = from; i < to; i++) {
            long h = handles[i];
            int id = (int) h;
            int gen = (int) (h >>> 32);
            // Only the thread that took the count to zero sees (gen, 0); a duplicate handle sees the bumped one.
            if (ids.compareAndSet(id, BlockIds.pack(gen, 0), BlockIds.pack(BlockIds.nextGeneration(gen), 0))) {
                if (POISON_FREED) {
                    poison(id);
                }
                free(id);
            }
        }
    }

    /** Drops one reference of a validated handle unless none is left; false then (nothing changed). */
    private boolean decrement(long handle) {
        int id = (int) handle;
        int gen = (int) (handle >>> 32);
        while (true) {
            long s = ids.state(id);
            if (BlockIds.generation(s) != gen || BlockIds.references(s) <= 0) {
                return false;
            }
            if (ids.compareAndSet(id, s, s - 1)) {
                return true;
            }
        }
    }

    int refCount(long handle) {
        ensureOpen();
        return BlockIds.references(liveState(handle, checkId(handle)));
    }

    /** The block's reference count, or 0 when the handle is stale or foreign (never throws; for metrics). */
    int refCountIfLive(long handle) {
        if (!isLive(handle)) {
            return 0;
        }
        long s = ids.state((int) handle);
        return BlockIds.generation(s) == (int) (handle >>> 32) ? Math.max(0, BlockIds.references(s)) : 0;
    }

    boolean isLive(long handle) {
        int id = (int) handle;
        if (closed || id < 0 || id >= ids.capacity()) {
            return false;
        }
        long s = ids.state(id);
        return BlockIds.generation(s) == (int) (handle >>> 32) && BlockIds.generation(s) > 0
                && BlockIds.references(s) > 0;
    }

    /** Native address of a live block; valid until the next compaction (see {@link #relocationEpoch()}). */
    long address(long handle) {
        ensureOpen();
        return ids.address(checkLive(handle));
    }

    /** The block's memory as a segment of {@link #blockBytes()} bytes; valid until the next compaction. */
    MemorySegment segment(long handle) {
        ensureOpen();
        int id = checkLive(handle);
        Slab s = slabTable[ids.slab(id)];
        return s.segment.asSlice((long) ids.slot(id) * s.blockBytes, s.blockBytes);
    }

    /**
     * The whole segment of the slab holding a live block, the block at {@link #offsetInSlab} in it: no object is
     * made (one segment per slab), for hot paths that must not allocate (append). Valid until the next compaction.
     */
    MemorySegment slabSegment(long handle) {
        ensureOpen();
        return slabTable[ids.slab(checkLive(handle))].segment;
    }

    /** Byte offset of a live block in its {@link #slabSegment}. */
    long offsetInSlab(long handle) {
        ensureOpen();
        int id = checkLive(handle);
        return (long) ids.slot(id) * slabTable[ids.slab(id)].blockBytes;   // the slab's size class, not the K size
    }

    /**
     * Adds one reference to each of the first {@code counts[i]} handles of {@code tables[i]}, for every i; all
     * handles are validated first, so a bad one changes nothing.
     */
    synchronized void addReferences(long[][] tables, int[] counts) {
        ensureOpen();
        for (int i = 0; i < tables.length; i++) {
            for (int b = 0; b < counts[i]; b++) {
                long s = liveState(tables[i][b], checkId(tables[i][b]));
                if (BlockIds.references(s) >= Integer.MAX_VALUE - tables.length) {
                    throw new KvSlabException("block " + (int) tables[i][b]
                            + " has reached the maximum reference count");
                }
            }
        }
        for (int i = 0; i < tables.length; i++) {
            for (int b = 0; b < counts[i]; b++) {
                int id = (int) tables[i][b];
                while (true) {
                    long s = ids.state(id);
                    if (ids.compareAndSet(id, s, s + 1)) {
                        break;
                    }
                }
            }
        }
    }

    /**
     * Writes the addresses of {@code handles[0 .. n)} as int64 into {@code out} from element {@code index}. The
     * caller holds the store's shared lock, so no compaction moves them while a kernel reads.
     */
    void addresses(long[] handles, int n, MemorySegment out, long index) {
        ensureOpen();
        for (int b = 0; b < n; b++) {
            out.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, index + b, ids.address(checkLive(handles[b])));
        }
    }

    /**
     * Fills a kernel's address arrays for one layer into {@code dst}: for each table h, offsets[h], lengths[h] and
     * its K and V block addresses, each array at the given byte position (int64 values, K and V indexed alike).
     * The caller holds the sequence's read lock and the store's shared lock.
     */
    void layerAddresses(BlockTable[] row, MemorySegment dst, long keysAt, long valuesAt, long offsetsAt,
                        long lengthsAt) {
        ensureOpen();
        long index = 0;
        for (int h = 0; h < row.length; h++) {
            BlockTable t = row[h];
            dst.set(java.lang.foreign.ValueLayout.JAVA_LONG, offsetsAt + (long) h * Long.BYTES, index);
            dst.set(java.lang.foreign.ValueLayout.JAVA_LONG, lengthsAt + (long) h * Long.BYTES, t.length);
            for (int b = 0; b < t.blockCount; b++) {
                long at = (index + b) * Long.BYTES;
                dst.set(java.lang.foreign.ValueLayout.JAVA_LONG, keysAt + at, ids.address(checkLive(t.keyBlocks[b])));
                dst.set(java.lang.foreign.ValueLayout.JAVA_LONG, valuesAt + at,
                        ids.address(checkLive(t.valueBlocks[b])));
            }
            index += t.blockCount;
        }
        dst.set(java.lang.foreign.ValueLayout.JAVA_LONG, offsetsAt + (long) row.length * Long.BYTES, index);
    }

    /** The stable block id of a handle (its low 32 bits): an opaque identity, not usable as a handle. */
    static long blockId(long handle) {
        return handle & 0xFFFFFFFFL;
    }

    /**
     * Moves the blocks of the sparsest slabs into free slots of fuller ones, then returns every empty slab to the
     * OS. Handles stay valid; addresses change (the relocation epoch increases).
     */
    public synchronized CompactionResult compact() {
        ensureOpen();
        drainParked();
        long moved = 0;
        long movedBytes = 0;
        int released = 0;
        long bytesReleased = 0;
        for (int c = 0; c < classBytes.length; c++) {
            while (true) {
                Slab victim = sparsestPartialSlab(c);
                if (victim == null) {
                    break;
                }
                long freeElsewhere = 0;
                for (Slab s : slabs) {
                    if (s != null && s != victim && s.sizeClass == c && s.used() > 0) {
                        freeElsewhere += s.capacity - s.used();
                    }
                }
                if (freeElsewhere < victim.used()) {
                    break;
                }
                long n = evacuate(victim);
                moved += n;
                movedBytes += n * classBytes[c];
            }
        }
        for (int i = 0; i < slabs.size(); i++) {
            Slab s = slabs.get(i);
            if (s != null && s.isEmpty()) {
                bytesReleased += s.bytes();
                releaseSlab(s, "compaction");
                released++;
            }
        }
        reclaimReleased();
        if (moved > 0) {
            relocationEpoch++;
        }
        return new CompactionResult(moved, movedBytes, released, bytesReleased);
    }

    /** Exact statistics (parked blocks are returned to their slabs first). */
    public synchronized AllocatorStats stats() {
        if (!closed) {
            drainParked();
        }
        int[] occupancy = new int[BINS];
        int count = 0;
        for (Slab s : slabs) {
            if (s != null) {
                occupancy[binFor(s)]++;
                count++;
            }
        }
        return new AllocatorStats(blockBytes, reservedBytes, takenBytes(), peakReservedBytes,
                peakLiveBytes, takenBlocks, count, limitBytes, occupancy, slabsAcquired, slabsReleased);
    }

    /** Live blocks per occupancy bin of the slab holding them (same bins as {@link AllocatorStats#slabsByOccupancy()}). */
    public synchronized long[] blocksByOccupancy() {
        if (!closed) {
            drainParked();
        }
        long[] blocks = new long[BINS];
        for (Slab s : slabs) {
            if (s != null) {
                blocks[binFor(s)] += s.used();
            }
        }
        return blocks;
    }

    public synchronized long liveBlocks() {
        if (!closed) {
            drainParked();
        }
        return takenBlocks;
    }

    public synchronized long reservedBytes() {
        return reservedBytes;
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Returns every slab to the OS, live blocks included, and invalidates all handles. Returns the number of
     * blocks that were still live (a leak if the caller expected zero). Idempotent.
     */
    public synchronized long closeAndCountLive() {
        if (closed) {
            return 0;
        }
        drainParked();
        reclaimReleased();
        long live = takenBlocks;
        closed = true;
        SlabReclaimer.await(reclaiming);
        scope.close();   // one handshake for the whole store: every segment handed out becomes unusable
        for (Slab s : slabs) {
            if (s != null) {
                s.release();
                slabsReleased++;
                reservedBytes -= s.bytes();
                emitRelease(s, "close");
            }
        }
        slabs.clear();
        slabTable = new Slab[0];
        for (List<Slab>[] perClass : bins) {
            for (List<Slab> b : perClass) {
                b.clear();
            }
        }
        reservedBytes = 0;
        takenBlocks = 0;
        Arrays.fill(takenByClass, 0);
        return live;
    }

    @Override
    public void close() {
        closeAndCountLive();
    }

    // ---- internals ----

    /**
     * This thread's stripe: by thread id (through {@link #stripeOfSlot}), so a virtual thread keeps its stripe
     * whichever carrier runs it.
     */
    ParkedBlocks stripe() {
        return stripes[stripeIndexOf(Thread.currentThread())];
    }

    /** The stripe {@code thread} uses now (tests). */
    int stripeIndexOf(Thread thread) {
        return stripeOfSlot[(int) thread.threadId() & (SLOTS - 1)];
    }

    /**
     * This thread's stripe, locked. A thread that finds it held by another moves its slot on to the next stripe for
     * its later calls (then waits for this one): two threads that keep meeting on one stripe (ids a multiple of the
     * stripe count apart) paid 5-20x per block in {@code bench alloc}; after one collision they use two stripes.
     */
    private ParkedBlocks lockedStripe() {
        int slot = (int) Thread.currentThread().threadId() & (SLOTS - 1);
        int s = stripeOfSlot[slot];
        ParkedBlocks stripe = stripes[s];
        if (!stripe.tryLock()) {
            stripeOfSlot[slot] = (s + 1) & stripeMask;
            stripe.lock();
        }
        return stripe;
    }

    private void ensureOpen() {
        if (closed) {
            throw new KvSlabException("allocator is closed");
        }
    }

    /** The id of a handle this allocator could have issued, else throws. */
    private int checkId(long handle) {
        int id = (int) handle;
        int gen = (int) (handle >>> 32);
        if (id < 0 || id >= ids.capacity() || gen <= 0) {
            throw notIssued(handle);
        }
        return id;
    }

    /** The current state of a live handle's id, else throws. */
    private long liveState(long handle, int id) {
        long s = ids.state(id);
        if (BlockIds.generation(s) != (int) (handle >>> 32) || BlockIds.references(s) <= 0) {
            throw dead(handle, s);
        }
        return s;
    }

    /** The exception for a handle whose id's state {@code s} does not hold it live. */
    private static InvalidBlockException dead(long handle, long s) {
        if (BlockIds.generation(s) == 0) {
            return notIssued(handle);
        }
        return new InvalidBlockException("block handle 0x" + Long.toHexString(handle)
                + " refers to a freed block (use after free or double free)");
    }

    private static InvalidBlockException notIssued(long handle) {
        return new InvalidBlockException("block handle 0x" + Long.toHexString(handle)
                + " was not issued by this allocator");
    }

    private int checkLive(long handle) {
        int id = checkId(handle);
        liveState(handle, id);
        return id;
    }

    /** Returns every parked block to its slab (monitor held). */
    private void drainParked() {
        foldPeak();
        for (ParkedBlocks stripe : stripes) {
            stripe.lock();
            try {
                for (int c = 0; c < classBytes.length; c++) {
                    freeOldest(stripe, c, stripe.count(c));
                }
            } finally {
                stripe.unlock();
            }
        }
    }

    /** Bytes of the blocks parked now (a racy estimate when other threads are allocating). */
    private long parkedEstimate() {
        long bytes = 0;
        for (ParkedBlocks stripe : stripes) {
            bytes += stripe.parkedBytes();
        }
        return bytes;
    }

    /**
     * Notes the peak of live bytes now (taken minus parked) at the end of an allocation under the monitor, and
     * restarts every stripe's low-water mark from what it holds.
     */
    private void notePeak() {
        peakLiveBytes = Math.max(peakLiveBytes, takenBytes() - parkedEstimate());
        restartLowWater();
    }

    /**
     * Notes the peak that blocks taken from the stripes without the monitor reached since the last monitor entry, at
     * the start of every monitor path that changes taken slots or parked counts (so the taken count was constant
     * meanwhile): live bytes were highest when each stripe held its fewest bytes (its low-water mark). Exact with one
     * thread (it uses one stripe); with several, the marks are read racily and need not have been reached at one
     * moment, so the peak may come out high by what other stripes gave out.
     */
    private void foldPeak() {
        long low = 0;
        for (ParkedBlocks stripe : stripes) {
            low += stripe.lowWaterBytes();
        }
        peakLiveBytes = Math.max(peakLiveBytes, takenBytes() - low);
        restartLowWater();
    }

    private void restartLowWater() {
        for (ParkedBlocks stripe : stripes) {
            stripe.restartLowWater();
        }
    }

    /**
     * Throws unless {@code n} more blocks of class {@code c} (and {@code valueBlocks} more of the V class, when
     * {@code c} is the K class of a two-class allocator) fit in free slots plus new slabs under the limit (parked
     * ones drained first).
     */
    private void ensureCapacity(int c, int n, int valueBlocks) {
        if (hasCapacity(c, n, valueBlocks)) {
            return;
        }
        drainParked();
        if (!hasCapacity(c, n, valueBlocks)) {
            long requested = n * classBytes[c] + (valueBlocks == 0 ? 0 : valueBlocks * classBytes[VALUE_CLASS]);
            throw new MemoryLimitExceededException(requested, limitBytes, takenBytes(), reservedBytes);
        }
    }

    private boolean hasCapacity(int c, int n, int valueBlocks) {
        long room = limitBytes - reservedBytes;
        room -= newSlabBytes(c, n);
        if (valueBlocks > 0) {
            room -= newSlabBytes(VALUE_CLASS, valueBlocks);
        }
        return room >= 0;
    }

    /** Bytes of new blocks class {@code c} needs for {@code n} more blocks beyond its free slots (0 if they fit). */
    private long newSlabBytes(int c, int n) {
        long free = 0;
        for (int b = BIN_EMPTY; b < BIN_FULL; b++) {
            for (Slab s : bins[c][b]) {
                free += s.capacity - s.used();
                if (free >= n) {
                    return 0;
                }
            }
        }
        if (free >= n) {
            return 0;
        }
        return (n - free) * classBytes[c];
    }

    private long allocateOne(int c) {
        Slab slab = fullestPartialSlab(c);
        if (slab == null) {
            List<Slab> spares = bins[c][BIN_EMPTY];
            slab = spares.isEmpty() ? acquireSlab(c) : spares.get(spares.size() - 1);
        }
        int id = takeSlot(c, slab);
        int gen = BlockIds.generation(ids.state(id));
        ids.setState(id, BlockIds.pack(gen, 1));
        return ((long) gen << 32) | id;
    }

    /** The non-full, non-empty slab of class {@code c} in the fullest bin, or null (monitor held). */
    private Slab fullestPartialSlab(int c) {
        for (int b = BIN_FULL - 1; b > BIN_EMPTY; b--) {
            List<Slab> bin = bins[c][b];
            if (!bin.isEmpty()) {
                return bin.get(bin.size() - 1);
            }
        }
        return null;
    }

    /** Takes a free slot of {@code slab} for a new id, left with count 0 (monitor held). Returns the id. */
    private int takeSlot(int c, Slab slab) {
        int id = newId();
        int slot = slab.take(id);
        rebin(slab);
        ids.place(id, slab.index, slot, slab.baseAddress + (long) slot * slab.blockBytes);
        takenBlocks++;
        takenByClass[c]++;
        return id;
    }

    private void poison(int id) {
        Slab slab = slabTable[ids.slab(id)];
        slab.segment.asSlice((long) ids.slot(id) * slab.blockBytes, slab.blockBytes).fill((byte) 0xFF);
    }

    /** Returns a dead id's slot to its slab (generation already bumped, count 0; monitor held). */
    private void free(int id) {
        Slab slab = slabs.get(ids.slab(id));
        slab.give(ids.slot(id));
        ids.place(id, -1, -1, 0);
        if (freeIdCount == freeIds.length) {
            freeIds = Arrays.copyOf(freeIds, freeIds.length * 2);
        }
        freeIds[freeIdCount++] = id;
        takenBlocks--;
        takenByClass[slab.sizeClass]--;
        rebin(slab);
        if (slab.isEmpty() && !POISON_FREED && spareBytes() > spareSlabBytes) {
            releaseSlab(slab, "empty");   // keep spares up to the bound, return the rest to the OS
            reclaimReleased();
        }
    }

    /** Bytes of the empty slabs (spares). */
    private long spareBytes() {
        long bytes = 0;
        for (List<Slab>[] perClass : bins) {
            for (Slab s : perClass[BIN_EMPTY]) {
                bytes += s.bytes();
            }
        }
        return bytes;
    }

    /** A free id whose state is (generation >= 1, 0). */
    private int newId() {
        if (freeIdCount > 0) {
            return freeIds[--freeIdCount];
        }
        if (idsIssued == Integer.MAX_VALUE) {
            throw new KvSlabException("block id space exhausted (2^31 - 1 blocks)");
        }
        if (idsIssued == ids.capacity()) {
            ids.grow();
        }
        int id = idsIssued++;
        ids.setState(id, BlockIds.pack(1, 0));
        return id;
    }

    private Slab acquireSlab(int c) {
        long room = (limitBytes - reservedBytes) / classBytes[c];   // ensureCapacity guaranteed room >= 1
        int capacity = (int) Math.min(classBlocksPerSlab[c], room);
        int index = slabs.indexOf(null);
        if (index < 0) {
            index = slabs.size();
            slabs.add(null);
        }
        SlabAcquireEvent event = Jfr.recording() ? new SlabAcquireEvent() : null;
        if (event != null) {
            event.begin();
        }
        Slab s = new Slab(index, c, capacity, classBytes[c], scope);
        slabs.set(index, s);
        slabTable = slabs.toArray(new Slab[0]);
        reservedBytes += s.bytes();
        peakReservedBytes = Math.max(peakReservedBytes, reservedBytes);
        slabsAcquired++;
        rebin(s);
        if (event != null && event.shouldCommit()) {
            event.slabIndex = index;
            event.slabBytes = s.bytes();
            event.blockCapacity = capacity;
            event.reservedBytesAfter = reservedBytes;
            event.commit();
        }
        return s;
    }

    /**
     * Gives a slab up: no handle can reach it any more and the accounting drops it now; the unmap itself is
     * queued ({@link #reclaimReleased}) so it runs off the caller's path.
     */
    private void releaseSlab(Slab s, String reason) {
        unbin(s);
        slabs.set(s.index, null);
        slabTable = slabs.toArray(new Slab[0]);
        reservedBytes -= s.bytes();
        slabsReleased++;
        toReclaim.add(s);
        emitRelease(s, reason);
    }

    /** Hands the slabs released by this operation to the background unmapper in one batch (monitor held). */
    private void reclaimReleased() {
        if (toReclaim.isEmpty()) {
            return;
        }
        reclaiming.removeIf(java.util.concurrent.Future::isDone);
        reclaiming.add(SlabReclaimer.unmapLater(toReclaim));
        toReclaim.clear();
    }

    private void emitRelease(Slab s, String reason) {
        if (!Jfr.recording()) {
            return;
        }
        SlabReleaseEvent event = new SlabReleaseEvent();
        if (event.shouldCommit()) {
            event.reason = reason;
            event.slabIndex = s.index;
            event.slabBytes = s.bytes();
            event.reservedBytesAfter = reservedBytes;
            event.commit();
        }
    }

    private Slab sparsestPartialSlab(int c) {
        Slab best = null;
        for (int b = BIN_EMPTY + 1; b < BIN_FULL && best == null; b++) {
            for (Slab s : bins[c][b]) {
                if (best == null || s.used() < best.used()) {
                    best = s;
                }
            }
        }
        return best;
    }

    /** Moves every block out of {@code victim} into the fullest other slabs. Returns the number moved. */
    private long evacuate(Slab victim) {
        unbin(victim);   // keep allocation targets away from the victim
        long moved = 0;
        for (int slot = 0; slot < victim.capacity; slot++) {
            int id = victim.ownerOf(slot);
            if (id == Slab.NO_BLOCK) {
                continue;
            }
            Slab target = null;
            List<Slab>[] classBins = bins[victim.sizeClass];
            for (int b = BIN_FULL - 1; b > BIN_EMPTY && target == null; b--) {
                if (!classBins[b].isEmpty()) {
                    target = classBins[b].get(classBins[b].size() - 1);
                }
            }
            if (target == null) {
                throw new IllegalStateException("compaction found no target slab although capacity was checked");
            }
            long bytes = victim.blockBytes;
            int newSlot = target.take(id);
            MemorySegment.copy(victim.segment, (long) slot * bytes, target.segment, (long) newSlot * bytes, bytes);
            victim.give(slot);
            ids.place(id, target.index, newSlot, target.baseAddress + (long) newSlot * bytes);
            rebin(target);
            moved++;
        }
        rebin(victim);
        return moved;
    }

    private static int binFor(Slab s) {
        if (s.isEmpty()) {
            return BIN_EMPTY;
        }
        if (s.isFull()) {
            return BIN_FULL;
        }
        return 1 + (int) Math.min(3, (4L * s.used()) / s.capacity);
    }

    private void rebin(Slab s) {
        int b = binFor(s);
        if (b == s.bin) {
            return;
        }
        unbin(s);
        s.bin = b;
        s.binPosition = bins[s.sizeClass][b].size();
        bins[s.sizeClass][b].add(s);
    }

    private void unbin(Slab s) {
        if (s.bin < 0) {
            return;
        }
        List<Slab> bin = bins[s.sizeClass][s.bin];
        Slab last = bin.remove(bin.size() - 1);
        if (last != s) {
            bin.set(s.binPosition, last);
            last.binPosition = s.binPosition;
        }
        s.bin = -1;
        s.binPosition = -1;
    }
}
