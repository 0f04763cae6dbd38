package io.kvslab.internal.table;

/**
 * One stripe of a {@link SlabAllocator}'s cache of freed blocks: block ids whose generation has been bumped (every
 * old handle is dead) but whose slab slot is still taken, ready to be handed out again by the next single-block
 * allocation of a thread that maps to this stripe, without the allocator's monitor.
 *
 * <p>Guarded by its own monitor, which in practice only the threads mapped to this stripe take (other threads take
 * it to drain the stripe before compaction, close, an exact count or a refused allocation), so it costs one
 * uncontended lock instead of a shared one. The padding keeps two stripes' counters off one cache line.
 */
final class ParkedBlocks {
    @SuppressWarnings("unused")
    private long p0, p1, p2, p3, p4, p5, p6, p7;
    private final int[] ids;
    private int count;
    @SuppressWarnings("unused")
    private long q0, q1, q2, q3, q4, q5, q6, q7;

    ParkedBlocks(int capacity) {
        this.ids = new int[capacity];
    }

    /** Parks {@code id}; false (nothing changed) when the stripe is full. Monitor held. */
    boolean offer(int id) {
        if (count == ids.length) {
            return false;
        }
        ids[count++] = id;
        return true;
    }

    /** The most recently parked id, or -1 when empty. Monitor held. */
    int poll() {
        return count == 0 ? -1 : ids[--count];
    }

    /** Parked ids (a racy read is fine for an estimate; exact with the monitor held). */
    int count() {
        return count;
    }
}
