package io.kvslab.internal.table;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One stripe of a {@link SlabAllocator}'s cache of freed blocks (a "magazine", as in jemalloc's tcache): block ids
 * whose generation has been bumped (every old handle is dead) but whose slab slot is still taken, ready to be handed
 * out again by the next single-block allocation of a thread that maps to this stripe, without the allocator's
 * monitor.
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
 * a subclass's, so the padding cannot be reordered away, unlike padding fields in one class), and the id array has
 * 64 unused bytes at each end, so two threads on two stripes never write the same cache line.
 */
final class ParkedBlocks extends ParkedBlocksFields {
    @SuppressWarnings("unused")
    private long q0, q1, q2, q3, q4, q5, q6, q7;

    /** Unused ints before and after the ids in {@link #ids}: one cache line each side. */
    private static final int GUARD = 16;
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
        super(new int[capacity + 2 * GUARD], capacity);
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

    /** Parks {@code id}; false (nothing changed) when the stripe is full. Lock held. */
    boolean offer(int id) {
        if (count == capacity) {
            return false;
        }
        ids[GUARD + count++] = id;
        return true;
    }

    /** The most recently parked id, or -1 when empty. Lock held. */
    int poll() {
        return count == 0 ? -1 : ids[GUARD + --count];
    }

    /** The {@code i}-th id in parking order (0 = parked first, the coldest). Lock held. */
    int idAt(int i) {
        return ids[GUARD + i];
    }

    /** Forgets the {@code n} ids parked first, keeping the later (warmer) ones. Lock held. */
    void dropOldest(int n) {
        System.arraycopy(ids, GUARD + n, ids, GUARD, count - n);
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
    final int[] ids;

    ParkedBlocksFields(int[] ids, int capacity) {
        this.ids = ids;
        this.capacity = capacity;
    }
}
