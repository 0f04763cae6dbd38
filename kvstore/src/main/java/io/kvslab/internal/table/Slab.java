package io.kvslab.internal.table;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One large native segment carved into equal slots, mapped from the OS by {@link SlabMemory} and scoped to its
 * allocator's one shared {@link Arena}, so it can be returned to the OS on its own without a thread handshake;
 * blocks never get an arena of their own. Not thread-safe: the allocator guards it.
 */
final class Slab {
    static final int NO_BLOCK = -1;

    final int index;
    final int capacity;
    /** The allocator's size class this slab is carved for (one block size per slab). */
    final int sizeClass;
    final long blockBytes;
    final MemorySegment segment;
    final long baseAddress;
    /** Block id stored in each slot, or NO_BLOCK. */
    private final int[] slotOwner;
    /** Stack of free slot numbers; the top is at freeSlots[freeCount - 1]. */
    private final int[] freeSlots;
    private int freeCount;
    /** Occupancy bin this slab sits in and its position there (for O(1) removal). */
    int bin = -1;
    int binPosition = -1;

    Slab(int index, int capacity, long blockBytes, Arena scope) {
        this(index, 0, capacity, blockBytes, scope);
    }

    Slab(int index, int sizeClass, int capacity, long blockBytes, Arena scope) {
        this.index = index;
        this.sizeClass = sizeClass;
        this.blockBytes = blockBytes;
        this.capacity = capacity;
        // Page alignment: every block starts on a cache line (block sizes are multiples of 64 in practice).
        this.segment = SlabMemory.map(Math.multiplyExact(blockBytes, (long) capacity), scope);
        this.baseAddress = segment.address();
        this.slotOwner = new int[capacity];
        Arrays.fill(slotOwner, NO_BLOCK);
        this.freeSlots = new int[capacity];
        // Hand out low slots first so a half-used slab keeps its blocks at the front.
        for (int i = 0; i < capacity; i++) {
            freeSlots[i] = capacity - 1 - i;
        }
        this.freeCount = capacity;
    }

    int used() {
        return capacity - freeCount;
    }

    boolean isFull() {
        return freeCount == 0;
    }

    boolean isEmpty() {
        return freeCount == capacity;
    }

    int take(int blockId) {
        int slot = freeSlots[--freeCount];
        slotOwner[slot] = blockId;
        return slot;
    }

    void give(int slot) {
        slotOwner[slot] = NO_BLOCK;
        freeSlots[freeCount++] = slot;
    }

    int ownerOf(int slot) {
        return slotOwner[slot];
    }

    long bytes() {
        return segment.byteSize();
    }

    /** Returns the memory to the OS; the allocator has made sure no block of it is live or reachable. */
    void release() {
        SlabMemory.unmap(segment);
    }
}
