package io.kvslab.internal.table;

/**
 * Blocks one table operation reserved before writing anything: K blocks (the allocator's K size class) and V blocks
 * (its V class), handed out in order by {@link #take(boolean)}. K and V blocks differ in size when the store keeps K
 * and V rows as different types, so an operation asks for the side it fills; unused ones go back with
 * {@link #releaseUnused}.
 */
final class FreshBlocks {
    static final FreshBlocks NONE = new FreshBlocks(new long[0], 0);

    /** K handles in {@code [0, keyCount)}, V handles in {@code [keyCount, length)}. */
    private final long[] handles;
    private final int keyCount;
    private int nextKey;
    private int nextValue;

    private FreshBlocks(long[] handles, int keyCount) {
        this.handles = handles;
        this.keyCount = keyCount;
        this.nextValue = keyCount;
    }

    /** Allocates {@code keys} K blocks and {@code values} V blocks, all or nothing. */
    static FreshBlocks allocate(SlabAllocator allocator, int keys, int values) {
        long[] handles = new long[Math.addExact(keys, values)];
        allocator.allocate(handles, keys, values);
        return new FreshBlocks(handles, keys);
    }

    int keyCount() {
        return keyCount;
    }

    int valueCount() {
        return handles.length - keyCount;
    }

    /** Total blocks reserved. */
    int size() {
        return handles.length;
    }

    /** The next reserved K block ({@code keys}) or V block. */
    long take(boolean keys) {
        if (keys) {
            if (nextKey == keyCount) {
                throw new IllegalStateException("more K blocks taken than the " + keyCount + " reserved");
            }
            return handles[nextKey++];
        }
        if (nextValue == handles.length) {
            throw new IllegalStateException("more V blocks taken than the " + valueCount() + " reserved");
        }
        return handles[nextValue++];
    }

    /** Returns every reserved block, taken or not (an operation undone: none of them stays in a table). */
    void releaseAll(SlabAllocator allocator) {
        if (handles.length > 0) {
            allocator.releaseAll(handles, 0, handles.length);
        }
        nextKey = keyCount;
        nextValue = handles.length;
    }

    /** Returns every block not taken. */
    void releaseUnused(SlabAllocator allocator) {
        if (nextKey < keyCount) {
            allocator.releaseAll(handles, nextKey, keyCount);
        }
        if (nextValue < handles.length) {
            allocator.releaseAll(handles, nextValue, handles.length);
        }
        nextKey = keyCount;
        nextValue = handles.length;
    }
}
