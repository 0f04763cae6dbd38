package io.kvslab.internal.table;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One stripe of a {@link SlabAllocator}'s cache of freed blocks (a "magazine", as in jemalloc's tcache), one stack
 * per size class behind one lock (a thread that appends K and V blocks of two sizes takes one lock, and the stripe
 * knows its parked bytes over both classes, which the allocator's peak of live bytes needs): block ids
 * whose generation has been bumped (every old handle is dead) but whose slab slot is still taken, ready to be handed
 * out again by the next single-block allocation of a thread that maps to this stripe, without the allocator's
 * monitor. Each is kept as the handle it will be handed out under ({@code generation << 32 | id}, the generation
 * its state word already holds): a parked id's generation cannot change while it is parked (its count is 0, so no
 * handle can touch it), so the allocation needs no read of the state word to build the handle.
 *
 * <p><b>Lock.</b> Guarded by a one-word spin lock of its own ({@link #lock()} / {@link #unlock()}): taking it is one
 * compare-and-set and giving it back one release store, where a monitor costs two compare-and-sets. In practice only
 * the threads mapped to this stripe take it (other threads take it to drain the stripe before a compaction, close,
 * an exact count or a refused allocation), and it is held for a few instructions only, never across a call that
 * could block, so a waiter spins briefly and then yields. A holder never takes the allocator's monitor; the
 * allocator's monitor may be held while taking a stripe's lock (lock order: allocator, then stripe).
 *
 * <p><b>Layout.</b> Stripes are made one after the other and would share cache lines: the lock and count sit
 * between two 64-byte runs of padding fields in a class hierarchy (HotSpot lays a superclass's fields out before
 * a subclass's, so the padding cannot be reordered away, unlike padding fields in one class), and the handle array
 * has 64 unused bytes at each end, so two threads on two stripes never write the same cache line.
 */
final class ParkedBlocks extends ParkedBlocksFields {
    @SuppressWarnings("unused")
    private long q0, q1, q2, q3, q4, q5, q6, q7;

    /** Unused longs before and after the handles in {@link #handles}: one cache line each side. */
    private static final int GUARD = 8;
    private static final VarHandle LOCK;
    private static final int SPINS_BEFORE_YIELD = 64;

    static {
        try {
            LOCK = MethodHandles.lookup().findVarHandle(ParkedBlocksFields.class, "locked", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * @param capacity   blocks of each class the stripe holds
     * @param keyBytes   bytes of a block of class 0
     * @param valueBytes bytes of a block of class 1, or 0 when the allocator has one class
     */
    ParkedBlocks(int capacity, long keyBytes, long valueBytes) {
        super(new long[(valueBytes == 0 ? 1 : 2) * capacity + 2 * GUARD], capacity, keyBytes, valueBytes);
    }

    /** Takes the stripe's lock (spinning, then yielding, while another thread holds it). */
    void lock() {
        int spins = 0;
        while (!LOCK.compareAndSet(this, 0, 1)) {
            if (++spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }

    /** Takes the lock if it is free, else returns false at once (one compare-and-set). */
    boolean tryLock() {
        return LOCK.compareAndSet(this, 0, 1);
    }

    /** Gives the lock back: a release store, so the next holder sees every change made under it. */
    void unlock() {
        LOCK.setRelease(this, 0);
    }

    /** Parked blocks of class {@code c} (a racy read is fine for an estimate; exact with the lock held). */
    int count(int c) {
        return c == 0 ? count0 : count1;
    }

    private void setCount(int c, int n) {
        if (c == 0) {
            count0 = n;
        } else {
            count1 = n;
        }
    }

    /**
     * Parks a dead block of class {@code c} as the handle it will next be handed out under (its current
     * generation, its id; never 0); false (nothing changed) when that class's stack is full. Lock held.
     */
    boolean offer(int c, long handle) {
        int n = count(c);
        if (n == capacity) {
            return false;
        }
        handles[GUARD + c * capacity + n] = handle;
        setCount(c, n + 1);
        return true;
    }

    /**
     * The handle of the most recently parked block of class {@code c}, or 0 when there is none (no handle is 0:
     * generations start at 1). Lock held.
     */
    long poll(int c) {
        int n = count(c) - 1;
        if (n < 0) {
            return 0;
        }
        setCount(c, n);
        noteLowWater();
        return handles[GUARD + c * capacity + n];
    }

    /** The {@code i}-th parked handle of class {@code c} in parking order (0 = parked first, the coldest). Lock held. */
    long handleAt(int c, int i) {
        return handles[GUARD + c * capacity + i];
    }

    /** Forgets the {@code n} blocks of class {@code c} parked first, keeping the later (warmer) ones. Lock held. */
    void dropOldest(int c, int n) {
        int base = GUARD + c * capacity;
        int count = count(c);
        System.arraycopy(handles, base + n, handles, base, count - n);
        setCount(c, count - n);
        noteLowWater();
    }

    /** Bytes of the blocks parked, both classes (a racy read is fine for an estimate; exact with the lock held). */
    long parkedBytes() {
        return count0 * keyBytes + count1 * valueBytes;
    }

    /**
     * The fewest parked bytes since {@link #restartLowWater()}: live bytes were highest when this stripe held fewest
     * (the allocator folds it into its peak of live bytes under its monitor; racily when other threads allocate).
     */
    long lowWaterBytes() {
        return lowWater;
    }

    /** Starts a new low-water mark at the bytes parked now (allocator's monitor held). */
    void restartLowWater() {
        lowWater = parkedBytes();
    }

    private void noteLowWater() {
        long p = parkedBytes();
        if (p < lowWater) {
            lowWater = p;
        }
    }

    /** Blocks of each class this stripe can hold. */
    int capacity() {
        return capacity;
    }
}

/**
 * Padding laid out before {@link ParkedBlocksFields}'s fields (a superclass's fields come first). The int fills the
 * 4-byte hole after the 12-byte object header: HotSpot puts the first int field it lays out there, even a subclass's,
 * and without this one the lock word went there, before the padding, on a line with the previous object's end.
 */
abstract class ParkedBlocksPadding {
    @SuppressWarnings("unused")
    private int hole;
    @SuppressWarnings("unused")
    private long p0, p1, p2, p3, p4, p5, p6, p7;
}

/** The fields of a {@link ParkedBlocks}, between its two paddings. */
abstract class ParkedBlocksFields extends ParkedBlocksPadding {
    /** 0 free, 1 held; changed through {@code ParkedBlocks.LOCK} only. */
    @SuppressWarnings("unused")
    volatile int locked;
    /** Parked blocks of class 0 and of class 1. */
    int count0;
    int count1;
    /** The fewest parked bytes since the allocator last sampled its peak; see {@code ParkedBlocks.lowWaterBytes()}. */
    long lowWater;
    final int capacity;
    final long keyBytes;
    final long valueBytes;
    /** Class 0's stack, then class 1's, between guards. */
    final long[] handles;

    ParkedBlocksFields(long[] handles, int capacity, long keyBytes, long valueBytes) {
        this.handles = handles;
        this.capacity = capacity;
        this.keyBytes = keyBytes;
        this.valueBytes = valueBytes;
    }
}
