package io.kvslab.internal.table;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Reusable native argument buffers of a kernel front end: one float region and one int64 region that grow to the
 * largest call and are reused, so steady-state calls allocate nothing. Growth allocates both regions from a fresh
 * shared arena and closes the old one (rare: only when a call is larger than any before). Not thread-safe.
 */
final class NativeScratch implements AutoCloseable {
    private Arena arena;
    private MemorySegment floats = MemorySegment.NULL;
    private MemorySegment longs = MemorySegment.NULL;

    /** Makes the regions hold at least {@code floatsNeeded} floats and {@code longsNeeded} int64 values. */
    void ensure(long floatsNeeded, long longsNeeded) {
        long floatBytes = Math.multiplyExact(floatsNeeded, (long) Float.BYTES);
        long longBytes = Math.multiplyExact(longsNeeded, (long) Long.BYTES);
        if (floats.byteSize() >= floatBytes && longs.byteSize() >= longBytes) {
            return;
        }
        long f = Math.max(floatsNeeded, Math.min(floats.byteSize() / Float.BYTES * 2, Long.MAX_VALUE / 16));
        long l = Math.max(longsNeeded, Math.min(longs.byteSize() / Long.BYTES * 2, Long.MAX_VALUE / 16));
        Arena next = Arena.ofShared();
        MemorySegment nf = next.allocate(Math.multiplyExact(f, (long) Float.BYTES), 64);
        MemorySegment nl = next.allocate(Math.multiplyExact(l, (long) Long.BYTES), 64);
        if (arena != null) {
            arena.close();
        }
        arena = next;
        floats = nf;
        longs = nl;
    }

    MemorySegment floats() {
        return floats;
    }

    MemorySegment longs() {
        return longs;
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
            arena = null;
            floats = MemorySegment.NULL;
            longs = MemorySegment.NULL;
        }
    }
}
