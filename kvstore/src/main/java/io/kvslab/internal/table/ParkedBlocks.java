package io.kvslab.internal.table;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One stripe of a {@link SlabAllocator}'s cache of freed blocks (a "magazine", as in jemalloc's tcache): block ids
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

    ParkedBlocks(int capacity) {
        super(new long[capacity + 2 * GUARD], capacity);
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

    /** Gives the lock back: a release store, so the next holder sees every change made under it. */
    void unlock() {
        LOCK.setRelease(this, 0);
    }

    /**
     * Parks a dead block as the handle it will next be handed out under (its current generation, its id; never 0);
     * false (nothing changed) when the stripe is full. Lock held.
     */
    boolean offer(long handle) {
        int n = count;
        if (n == capacity) {
            return false;
        }
        handles[GUARD + n] = handle;
        count = n + 1;
        return true;
    }

    /** The handle of the most recently parked block, or 0 when empty (no handle is 0: generations start at 1). Lock held. */
    long poll() {
        int n = count - 1;
        if (n < 0) {
            return 0;
        }
        count = n;
        return handles[GUARD + n];
    }

    /** The {@code i}-th parked handle in parking order (0 = parked first, the coldest). Lock held. */
    long handleAt(int i) {
        return handles[GUARD + i];
    }

    /** Forgets the {@code n} blocks parked first, keeping the later (warmer) ones. Lock held. */
    void dropOldest(int n) {
        System.arraycopy(handles, GUARD + n, handles, GUARD, count - n);
        count -= n;
    }

    /** Parked ids (a racy read is fine for an estimate; exact with the lock held). */
    int count() {
        return count;
    }

    /** Ids this stripe can hold. */
    int capacity() {
        return capacity;
    }
}

/** Padding laid out before {@link ParkedBlocksFields}'s fields (a superclass's fields come first). */
abstract class ParkedBlocksPadding {
    @SuppressWarnings("unused")
    private long p0, p1, p2, p3, p4, p5, p6, p7;
}

/** The fields of a {@link ParkedBlocks}, between its two paddings. */
abstract class ParkedBlocksFields extends ParkedBlocksPadding {
    /** 0 free, 1 held; changed through {@code ParkedBlocks.LOCK} only. */
    @SuppressWarnings("unused")
    volatile int locked;
    int count;
    final int capacity;
    final long[] handles;

    ParkedBlocksFields(long[] handles, int capacity) {
        this.handles = handles;
        this.capacity = capacity;
    }
}
