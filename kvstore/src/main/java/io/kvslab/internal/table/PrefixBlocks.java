package io.kvslab.internal.table;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The block references a prefix cache holds: per cached token block, one {@link Column} naming its K and V block
 * in every (layer, KV head), plus how many references the cache itself holds per block (a block may sit in
 * columns of different salts), so that "no sequence uses this column" can be decided. Handles never leave this
 * package: the cache sees opaque columns.
 *
 * <p>Not thread-safe: the owning cache calls it under its monitor. Lock order: a sequence's lock (when one is
 * involved) is taken before the cache's monitor, the allocator's monitor after it.
 */
public final class PrefixBlocks {
    private final SlabAllocator allocator;
    private final Map<Long, Integer> cacheRefs = new HashMap<>();

    /** One cached token block's K and V blocks, indexed layer * kvHeads + head. No public state. */
    public static final class Column {
        final PrefixBlocks owner;
        final long[] keys;
        final long[] values;
        boolean dropped;

        private Column(PrefixBlocks owner, long[] keys, long[] values) {
            this.owner = owner;
            this.keys = keys;
            this.values = values;
        }
    }

    public PrefixBlocks(TableStore store) {
        this.allocator = store.allocator;
    }

    /** A live column of this cache: a dropped or foreign one would release references it does not hold. */
    private Column own(Column c) {
        if (c == null || c.owner != this || c.dropped) {
            throw new IllegalArgumentException("not a live column of this prefix cache");
        }
        return c;
    }

    /**
     * A new column holding one more reference to block {@code block} of every table of {@code s}. The caller holds
     * {@code s}'s read lock ({@link SequenceTables#underReadLock}) and has checked that every table has that block.
     */
    public Column pin(SequenceTables s, int block) {
        if (s.allocator != allocator) {
            throw new IllegalArgumentException("the sequence belongs to another store than this cache");
        }
        int tables = s.layout.layers() * s.layout.kvHeads();
        long[] keys = new long[tables];
        long[] values = new long[tables];
        s.pinColumn(block, keys, values);
        for (int t = 0; t < tables; t++) {
            cacheRefs.merge(keys[t], 1, Integer::sum);
            cacheRefs.merge(values[t], 1, Integer::sum);
        }
        return new Column(this, keys, values);
    }

    /** Whether no sequence references any block of the column (only this cache does). */
    public boolean unreferenced(Column c) {
        own(c);
        for (int t = 0; t < c.keys.length; t++) {
            if (allocator.refCount(c.keys[t]) != cacheRefs.get(c.keys[t])
                    || allocator.refCount(c.values[t]) != cacheRefs.get(c.values[t])) {
                return false;
            }
        }
        return true;
    }

    /** Drops the column's references; returns the number of blocks that were freed (no reference left). */
    public long drop(Column c) {
        own(c).dropped = true;
        long freed = 0;
        for (int t = 0; t < c.keys.length; t++) {
            freed += release(c.keys[t]);
            freed += release(c.values[t]);
        }
        return freed;
    }

    private int release(long handle) {
        cacheRefs.computeIfPresent(handle, (h, n) -> n == 1 ? null : n - 1);
        return allocator.release(handle) == 0 ? 1 : 0;
    }

    /**
     * Makes the empty tables of {@code s} reference the columns as rows {@code 0 .. k * tokensPerBlock - 1} at
     * positions equal to the row index. The caller holds {@code s}'s write lock.
     */
    public void adopt(SequenceTables s, List<Column> chain) {
        List<long[][]> columns = new java.util.ArrayList<>(chain.size());
        if (s.allocator != allocator) {
            throw new IllegalArgumentException("the sequence belongs to another store than this cache");
        }
        for (Column c : chain) {
            own(c);
            columns.add(new long[][] {c.keys, c.values});
        }
        s.adoptColumns(columns);
    }

    /** Rows from 0 on that every table of {@code s} holds at the position equal to the row index (read lock held). */
    public static int denseRows(SequenceTables s) {
        return s.denseRows();
    }

    /** Leading rows of {@code s} that are exactly a fresh prefill's ({@link SequenceTables#publishableRows}). */
    public static int publishableRows(SequenceTables s) {
        return s.publishableRows();
    }
}
