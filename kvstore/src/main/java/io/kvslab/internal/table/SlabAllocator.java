package io.kvslab.internal.table;

import io.kvslab.AllocatorStats;
import io.kvslab.CompactionResult;
import io.kvslab.MemoryLimitExceededException;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.metrics.SlabAcquireEvent;
import io.kvslab.metrics.SlabReleaseEvent;

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
 * handshake, and closing the allocator invalidates every segment it handed out. Reused slots hold stale bytes;
 * readers read only rows below a table's length, which every such row's writer has written.
 *
 * <p><b>Limit.</b> {@code limitBytes} caps the reserved (slab) bytes. An allocation that cannot be served under it
 * throws {@link MemoryLimitExceededException} and allocates nothing.
 *
 * <p><b>Threads.</b> Every method is thread-safe (one monitor). Writing into a block's memory is the caller's
 * business; {@link #compact()} must not run while another thread reads or writes block memory (the cache layer
 * guarantees that with its store lock).
 */
public final class SlabAllocator implements AutoCloseable {
    /** Fill freed blocks with NaN bytes and never unmap slabs early; see the class comment. */
    static final boolean POISON_FREED = Boolean.getBoolean("kvslab.debug.poisonFreed");
    /** Occupancy bins: 0 = empty, 1..4 = fill quartiles of non-full slabs, 5 = full. */
    static final int BINS = 6;
    private static final int BIN_EMPTY = 0;
    private static final int BIN_FULL = BINS - 1;

    private final long blockBytes;
    private final int blocksPerSlab;
    private final long limitBytes;
    private final long spareSlabBytes;
    private final Arena scope = Arena.ofShared();

    private final List<Slab> slabs = new ArrayList<>();           // by slab index; null once released
    @SuppressWarnings("unchecked")
    private final List<Slab>[] bins = new List[BINS];

    // Per block id (stable across relocation).
    private int[] generation = new int[1024];
    private int[] refCount = new int[1024];
    private int[] slabOf = new int[1024];
    private int[] slotOf = new int[1024];
    private long[] addressOf = new long[1024];
    private int idsIssued;
    private int[] freeIds = new int[1024];
    private int freeIdCount;

    private long reservedBytes;
    private long liveBlocks;
    private long peakReservedBytes;
    private long peakLiveBytes;
    private long slabsAcquired;
    private long slabsReleased;
    private long relocationEpoch;
    private boolean closed;

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
        if (spareSlabBytes < 0) {
            throw new KvArgumentException("spareSlabBytes must be >= 0, got " + spareSlabBytes);
        }
        if (blockBytes <= 0) {
            throw new KvArgumentException("blockBytes must be > 0, got " + blockBytes);
        }
        if (slabBytes <= 0) {
            throw new KvArgumentException("slabBytes must be > 0, got " + slabBytes);
        }
        if (limitBytes < blockBytes) {
            throw new KvArgumentException("limitBytes must be >= one block (" + blockBytes + " bytes), got " + limitBytes);
        }
        long perSlab = Math.max(1, slabBytes / blockBytes);
        if (perSlab > Integer.MAX_VALUE / 2) {
            throw new KvArgumentException("slabBytes / blockBytes must be < 2^30 blocks per slab, got " + perSlab);
        }
        this.blockBytes = blockBytes;
        this.blocksPerSlab = (int) perSlab;
        this.limitBytes = limitBytes;
        this.spareSlabBytes = spareSlabBytes;
        for (int i = 0; i < BINS; i++) {
            bins[i] = new ArrayList<>();
        }
    }

    public long blockBytes() {
        return blockBytes;
    }

    /** Blocks in a full-size slab. */
    public int blocksPerSlab() {
        return blocksPerSlab;
    }

    /** Increases whenever a compaction moved at least one block; cached addresses older than it are stale. */
    public synchronized long relocationEpoch() {
        return relocationEpoch;
    }

    /** Allocates one block (reference count 1). */
    synchronized long allocate() {
        ensureOpen();
        ensureCapacity(1);
        return allocateOne();
    }

    /** Allocates {@code n} blocks, all or nothing, into {@code out[0..n)}. */
    synchronized void allocate(long[] out, int n) {
        ensureOpen();
        if (n < 0 || n > out.length) {
            throw new KvArgumentException("block count must be in [0, " + out.length + "], got " + n);
        }
        ensureCapacity(n);
        for (int i = 0; i < n; i++) {
            out[i] = allocateOne();
        }
    }

    /** Adds a reference to a live block. */
    synchronized void addReference(long handle) {
        ensureOpen();
        int id = checkLive(handle);
        if (refCount[id] == Integer.MAX_VALUE) {
            throw new KvSlabException("block " + id + " has reached the maximum reference count");
        }
        refCount[id]++;
    }

    /** Drops a reference; the block is freed when none is left. Returns the remaining count. */
    synchronized int release(long handle) {
        ensureOpen();
        int id = checkLive(handle);
        int left = --refCount[id];
        if (left == 0) {
            free(id);
        }
        return left;
    }

    /** Drops one reference of each handle; validates all of them first so a bad one changes nothing. */
    synchronized void releaseAll(long[] handles, int from, int to) {
        ensureOpen();
        for (int i = from; i < to; i++) {
            checkLive(handles[i]);
        }
        // The same handle may appear twice only if it holds two references; check before touching anything.
        for (int i = from; i < to; i++) {
            int id = (int) handles[i];
            if (--refCount[id] < 0) {
                for (int j = from; j <= i; j++) {
                    refCount[(int) handles[j]]++;
                }
                throw new InvalidBlockException("block " + id + " released more often than it was referenced");
            }
        }
        for (int i = from; i < to; i++) {
            int id = (int) handles[i];
            if (refCount[id] == 0 && generation[id] == (int) (handles[i] >>> 32)) {
                free(id);
            }
        }
    }

    synchronized int refCount(long handle) {
        ensureOpen();
        return refCount[checkLive(handle)];
    }

    /** The block's reference count, or 0 when the handle is stale or foreign (never throws; for metrics). */
    synchronized int refCountIfLive(long handle) {
        return isLive(handle) ? refCount[(int) handle] : 0;
    }

    synchronized boolean isLive(long handle) {
        int id = (int) handle;
        return !closed && id >= 0 && id < idsIssued && generation[id] == (int) (handle >>> 32) && refCount[id] > 0;
    }

    /** Native address of a live block; valid until the next compaction (see {@link #relocationEpoch()}). */
    synchronized long address(long handle) {
        ensureOpen();
        return addressOf[checkLive(handle)];
    }

    /** The block's memory as a segment of {@link #blockBytes()} bytes; valid until the next compaction. */
    synchronized MemorySegment segment(long handle) {
        ensureOpen();
        int id = checkLive(handle);
        Slab s = slabs.get(slabOf[id]);
        return s.segment.asSlice((long) slotOf[id] * blockBytes, blockBytes);
    }

    /**
     * Adds one reference to each of the first {@code counts[i]} handles of {@code tables[i]}, for every i; all
     * handles are validated first, so a bad one changes nothing.
     */
    synchronized void addReferences(long[][] tables, int[] counts) {
        ensureOpen();
        for (int i = 0; i < tables.length; i++) {
            for (int b = 0; b < counts[i]; b++) {
                int id = checkLive(tables[i][b]);
                if (refCount[id] >= Integer.MAX_VALUE - tables.length) {
                    throw new KvSlabException("block " + id + " has reached the maximum reference count");
                }
            }
        }
        for (int i = 0; i < tables.length; i++) {
            for (int b = 0; b < counts[i]; b++) {
                refCount[(int) tables[i][b]]++;
            }
        }
    }

    /**
     * Writes the addresses of {@code handles[0 .. n)} as int64 into {@code out} from element {@code index}. The
     * caller holds the store's shared lock, so no compaction moves them while a kernel reads.
     */
    synchronized void addresses(long[] handles, int n, MemorySegment out, long index) {
        ensureOpen();
        for (int b = 0; b < n; b++) {
            out.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, index + b, addressOf[checkLive(handles[b])]);
        }
    }

    /**
     * Fills a kernel's address arrays for one layer in one monitor entry: for each table h, offsets[h], lengths[h]
     * and its K and V block addresses. The caller holds the sequence's read lock and the store's shared lock.
     */
    synchronized void layerAddresses(BlockTable[] row, MemorySegment keys, MemorySegment values,
                                     MemorySegment offsets, MemorySegment lengths) {
        ensureOpen();
        long index = 0;
        for (int h = 0; h < row.length; h++) {
            BlockTable t = row[h];
            offsets.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, h, index);
            lengths.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, h, t.length);
            for (int b = 0; b < t.blockCount; b++) {
                keys.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, index + b, addressOf[checkLive(t.keyBlocks[b])]);
                values.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, index + b,
                        addressOf[checkLive(t.valueBlocks[b])]);
            }
            index += t.blockCount;
        }
        offsets.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, row.length, index);
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
        long moved = 0;
        int released = 0;
        long bytesReleased = 0;
        while (true) {
            Slab victim = sparsestPartialSlab();
            if (victim == null) {
                break;
            }
            long freeElsewhere = 0;
            for (Slab s : slabs) {
                if (s != null && s != victim && s.used() > 0) {
                    freeElsewhere += s.capacity - s.used();
                }
            }
            if (freeElsewhere < victim.used()) {
                break;
            }
            moved += evacuate(victim);
        }
        for (int i = 0; i < slabs.size(); i++) {
            Slab s = slabs.get(i);
            if (s != null && s.isEmpty()) {
                bytesReleased += s.bytes();
                releaseSlab(s, "compaction");
                released++;
            }
        }
        if (moved > 0) {
            relocationEpoch++;
        }
        return new CompactionResult(moved, moved * blockBytes, released, bytesReleased);
    }

    public synchronized AllocatorStats stats() {
        int[] occupancy = new int[BINS];
        int count = 0;
        for (Slab s : slabs) {
            if (s != null) {
                occupancy[binFor(s)]++;
                count++;
            }
        }
        return new AllocatorStats(blockBytes, reservedBytes, liveBlocks * blockBytes, peakReservedBytes,
                peakLiveBytes, liveBlocks, count, limitBytes, occupancy, slabsAcquired, slabsReleased);
    }

    /** Live blocks per occupancy bin of the slab holding them (same bins as {@link AllocatorStats#slabsByOccupancy()}). */
    public synchronized long[] blocksByOccupancy() {
        long[] blocks = new long[BINS];
        for (Slab s : slabs) {
            if (s != null) {
                blocks[binFor(s)] += s.used();
            }
        }
        return blocks;
    }

    public synchronized long liveBlocks() {
        return liveBlocks;
    }

    public synchronized long reservedBytes() {
        return reservedBytes;
    }

    public synchronized boolean isClosed() {
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
        long live = liveBlocks;
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
        for (List<Slab> b : bins) {
            b.clear();
        }
        reservedBytes = 0;
        liveBlocks = 0;
        closed = true;
        return live;
    }

    @Override
    public void close() {
        closeAndCountLive();
    }

    // ---- internals (all called with the monitor held) ----

    private void ensureOpen() {
        if (closed) {
            throw new KvSlabException("allocator is closed");
        }
    }

    private int checkLive(long handle) {
        int id = (int) handle;
        int gen = (int) (handle >>> 32);
        if (id < 0 || id >= idsIssued || gen <= 0) {
            throw new InvalidBlockException("block handle 0x" + Long.toHexString(handle)
                    + " was not issued by this allocator");
        }
        if (generation[id] != gen || refCount[id] == 0) {
            throw new InvalidBlockException("block handle 0x" + Long.toHexString(handle)
                    + " refers to a freed block (use after free or double free)");
        }
        return id;
    }

    /** Throws unless n more blocks fit in free slots plus new slabs under the limit. */
    private void ensureCapacity(int n) {
        long free = 0;
        for (int b = BIN_EMPTY; b < BIN_FULL; b++) {
            for (Slab s : bins[b]) {
                free += s.capacity - s.used();
            }
        }
        if (free >= n) {
            return;
        }
        long missing = n - free;
        long newBlocksUnderLimit = (limitBytes - reservedBytes) / blockBytes;
        if (missing > newBlocksUnderLimit) {
            throw new MemoryLimitExceededException((long) n * blockBytes, limitBytes, liveBlocks * blockBytes,
                    reservedBytes);
        }
    }

    private long allocateOne() {
        Slab slab = null;
        for (int b = BIN_FULL - 1; b >= BIN_EMPTY && slab == null; b--) {
            List<Slab> bin = bins[b];
            if (!bin.isEmpty()) {
                slab = bin.get(bin.size() - 1);
            }
        }
        if (slab == null) {
            slab = acquireSlab();
        }
        int id = newId();
        int slot = slab.take(id);
        rebin(slab);
        refCount[id] = 1;
        slabOf[id] = slab.index;
        slotOf[id] = slot;
        addressOf[id] = slab.baseAddress + (long) slot * blockBytes;
        liveBlocks++;
        peakLiveBytes = Math.max(peakLiveBytes, liveBlocks * blockBytes);
        return ((long) generation[id] << 32) | id;
    }

    private void free(int id) {
        Slab slab = slabs.get(slabOf[id]);
        if (POISON_FREED) {
            slab.segment.asSlice((long) slotOf[id] * blockBytes, blockBytes).fill((byte) 0xFF);
        }
        slab.give(slotOf[id]);
        generation[id] = generation[id] == Integer.MAX_VALUE ? 1 : generation[id] + 1;
        addressOf[id] = 0;
        if (freeIdCount == freeIds.length) {
            freeIds = Arrays.copyOf(freeIds, freeIds.length * 2);
        }
        freeIds[freeIdCount++] = id;
        liveBlocks--;
        rebin(slab);
        if (slab.isEmpty() && !POISON_FREED && spareBytes() > spareSlabBytes) {
            releaseSlab(slab, "empty");   // keep spares up to the bound, return the rest to the OS
        }
    }

    /** Bytes of the empty slabs (spares). */
    private long spareBytes() {
        long bytes = 0;
        for (Slab s : bins[BIN_EMPTY]) {
            bytes += s.bytes();
        }
        return bytes;
    }

    private int newId() {
        if (freeIdCount > 0) {
            return freeIds[--freeIdCount];
        }
        if (idsIssued == Integer.MAX_VALUE) {
            throw new KvSlabException("block id space exhausted (2^31 - 1 blocks)");
        }
        if (idsIssued == generation.length) {
            int n = (int) Math.min(Integer.MAX_VALUE, generation.length * 2L);
            generation = Arrays.copyOf(generation, n);
            refCount = Arrays.copyOf(refCount, n);
            slabOf = Arrays.copyOf(slabOf, n);
            slotOf = Arrays.copyOf(slotOf, n);
            addressOf = Arrays.copyOf(addressOf, n);
        }
        int id = idsIssued++;
        generation[id] = 1;
        return id;
    }

    private Slab acquireSlab() {
        long room = (limitBytes - reservedBytes) / blockBytes;   // ensureCapacity guaranteed room >= 1
        int capacity = (int) Math.min(blocksPerSlab, room);
        int index = slabs.indexOf(null);
        if (index < 0) {
            index = slabs.size();
            slabs.add(null);
        }
        SlabAcquireEvent event = Jfr.recording() ? new SlabAcquireEvent() : null;
        if (event != null) {
            event.begin();
        }
        Slab s = new Slab(index, capacity, blockBytes, scope);
        slabs.set(index, s);
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

    private void releaseSlab(Slab s, String reason) {
        unbin(s);
        slabs.set(s.index, null);
        reservedBytes -= s.bytes();
        slabsReleased++;
        s.release();
        emitRelease(s, reason);
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

    private Slab sparsestPartialSlab() {
        Slab best = null;
        for (int b = BIN_EMPTY + 1; b < BIN_FULL && best == null; b++) {
            for (Slab s : bins[b]) {
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
            for (int b = BIN_FULL - 1; b > BIN_EMPTY && target == null; b--) {
                if (!bins[b].isEmpty()) {
                    target = bins[b].get(bins[b].size() - 1);
                }
            }
            if (target == null) {
                throw new IllegalStateException("compaction found no target slab although capacity was checked");
            }
            int newSlot = target.take(id);
            MemorySegment.copy(victim.segment, (long) slot * blockBytes, target.segment,
                    (long) newSlot * blockBytes, blockBytes);
            victim.give(slot);
            slabOf[id] = target.index;
            slotOf[id] = newSlot;
            addressOf[id] = target.baseAddress + (long) newSlot * blockBytes;
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
        s.binPosition = bins[b].size();
        bins[b].add(s);
    }

    private void unbin(Slab s) {
        if (s.bin < 0) {
            return;
        }
        List<Slab> bin = bins[s.bin];
        Slab last = bin.remove(bin.size() - 1);
        if (last != s) {
            bin.set(s.binPosition, last);
            last.binPosition = s.binPosition;
        }
        s.bin = -1;
        s.binPosition = -1;
    }
}
