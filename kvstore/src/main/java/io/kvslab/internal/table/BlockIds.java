package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Per block id metadata of a {@link SlabAllocator}, in fixed pages that are never copied, so a lock-free reader
 * or a compare-and-set on one id can never be lost to a resize: the page directory grows copy-on-write (under the
 * allocator's monitor) and is published through a volatile field.
 *
 * <p>Each id has one 64-bit state word, {@code generation << 32 | referenceCount}, changed only by volatile reads
 * and compare-and-set: validating a handle's generation and changing the count is one atomic step, so two threads
 * releasing references of a shared block, or a stale handle racing a reuse, cannot corrupt the count. Slab, slot
 * and address change only under the allocator's monitor (allocation from a slab, compaction under the store's
 * exclusive lock) and reach other threads through the same happens-before edges as the handle itself.
 */
final class BlockIds {
    static final int PAGE_SHIFT = 12;
    static final int PAGE = 1 << PAGE_SHIFT;
    static final int MASK = PAGE - 1;
    /** 8-byte state words per 64-byte cache line, as a shift; and cache lines of state words per page. */
    private static final int WORDS_PER_LINE_SHIFT = 3;
    private static final int LINES = PAGE >>> WORDS_PER_LINE_SHIFT;
    /**
     * Unused words before and after a page's state words: one cache line each side. Without the front one, the
     * words of ids 0, 512, ..., 2560 of a page shared a line with the array's length, which every thread reads on
     * every access to any state word (the bounds check): the thread that owned id 0 (the first block an allocator
     * hands out) wrote that line twice per alloc + free, and every other thread's alloc + free then missed on it.
     */
    static final int GUARD = 1 << WORDS_PER_LINE_SHIFT;
    private static final VarHandle STATE = MethodHandles.arrayElementVarHandle(long[].class);

    /** The metadata of {@link #PAGE} consecutive ids. */
    static final class Page {
        final long[] state = new long[PAGE + 2 * GUARD];
        final int[] slab = new int[PAGE];
        final int[] slot = new int[PAGE];
        final long[] address = new long[PAGE];
    }

    private volatile Page[] pages = new Page[0];

    /** Ids that have a page. */
    long capacity() {
        return (long) pages.length << PAGE_SHIFT;
    }

    /** Adds one page; caller holds the allocator's monitor. */
    void grow() {
        Page[] old = pages;
        if ((long) (old.length + 1) << PAGE_SHIFT > Integer.MAX_VALUE + 1L) {
            throw new KvSlabException("block id space exhausted (2^31 blocks)");
        }
        Page[] n = java.util.Arrays.copyOf(old, old.length + 1);
        n[old.length] = new Page();
        pages = n;
    }

    Page page(int id) {
        return pages[id >>> PAGE_SHIFT];
    }

    /**
     * Where an id's state word sits in its page: id {@code i} of a page gets word
     * {@code GUARD + (i mod 512) * 8 + i / 512}, i.e. cache line {@code i mod 512} of the words between the guards
     * (eight 8-byte words to a 64-byte line). Two ids less than 512 apart never share a line, so threads working on
     * blocks taken close together (one after the other, or from one stripe's refill run) never write one line: every
     * reference count change and every reuse writes its id's word. The guards keep every word off the line of the
     * array's header (its length is read by every access) and off the next object's first line.
     */
    static int stateIndex(int id) {
        int i = id & MASK;
        return GUARD + (((i & (LINES - 1)) << WORDS_PER_LINE_SHIFT) | (i >>> (PAGE_SHIFT - WORDS_PER_LINE_SHIFT)));
    }

    /**
     * The state words of {@code id}'s page, or null when the id has no page (negative or never issued): one read
     * of the page directory, for a caller that validates an id and then reads and compare-and-sets its word.
     */
    long[] stateWords(int id) {
        Page[] p = pages;
        int i = id >>> PAGE_SHIFT;
        return i < p.length ? p[i].state : null;
    }

    /** A volatile read of the word at {@code index} (a {@link #stateIndex}) of {@link #stateWords}. */
    static long state(long[] words, int index) {
        return (long) STATE.getVolatile(words, index);
    }

    /** Compare-and-set of the word at {@code index} (a {@link #stateIndex}) of {@link #stateWords}. */
    static boolean compareAndSet(long[] words, int index, long expected, long state) {
        return STATE.compareAndSet(words, index, expected, state);
    }

    long state(int id) {
        return (long) STATE.getVolatile(page(id).state, stateIndex(id));
    }

    void setState(int id, long state) {
        STATE.setVolatile(page(id).state, stateIndex(id), state);
    }

    /**
     * Sets the state of an id this thread owns (a parked id being handed out) with release semantics only: no other
     * thread changes it meanwhile, and the handle reaches other threads through a later happens-before edge.
     */
    void setStateRelease(int id, long state) {
        STATE.setRelease(page(id).state, stateIndex(id), state);
    }

    boolean compareAndSet(int id, long expected, long state) {
        return STATE.compareAndSet(page(id).state, stateIndex(id), expected, state);
    }

    static long pack(int generation, int references) {
        return ((long) generation << 32) | (references & 0xFFFFFFFFL);
    }

    static int generation(long state) {
        return (int) (state >>> 32);
    }

    static int references(long state) {
        return (int) state;
    }

    /** The generation after {@code g} (1 after the largest; 0 is never a live generation). */
    static int nextGeneration(int g) {
        return g == Integer.MAX_VALUE ? 1 : g + 1;
    }

    int slab(int id) {
        return page(id).slab[id & MASK];
    }

    int slot(int id) {
        return page(id).slot[id & MASK];
    }

    long address(int id) {
        return page(id).address[id & MASK];
    }

    void place(int id, int slab, int slot, long address) {
        Page p = page(id);
        p.slab[id & MASK] = slab;
        p.slot[id & MASK] = slot;
        p.address[id & MASK] = address;
    }
}
