package io.kvslab.internal.table;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Reusable native argument buffers of a kernel front end: one float region and one int64 region that grow to the
 * largest call and are reused, so steady-state calls allocate nothing. Growth allocates both regions from a fresh
 * shared arena and closes the old one (rare: only when a call is larger than any before). Not thread-safe.
 */
public final class NativeScratch implements AutoCloseable {
    private Arena arena;
    private MemorySegment floats = MemorySegment.NULL;
    private MemorySegment longs = MemorySegment.NULL;

    /** Makes the regions hold at least {@code floatsNeeded} floats and {@code longsNeeded} int64 values. */
    public void ensure(long floatsNeeded, long longsNeeded) {
        if (floats.byteSize() >= floatsNeeded * Float.BYTES && longs.byteSize() >= longsNeeded * Long.BYTES) {
            return;
        }
        long f = Math.max(floatsNeeded, floats.byteSize() / Float.BYTES * 2);
        long l = Math.max(longsNeeded, longs.byteSize() / Long.BYTES * 2);
        Arena next = Arena.ofShared();
        MemorySegment nf = next.allocate(f * Float.BYTES, 64);
        MemorySegment nl = next.allocate(l * Long.BYTES, 64);
        if (arena != null) {
            arena.close();
        }
        arena = next;
        floats = nf;
        longs = nl;
    }

    public MemorySegment floats() {
        return floats;
    }

    public MemorySegment longs() {
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
