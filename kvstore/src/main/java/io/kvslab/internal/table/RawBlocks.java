package io.kvslab.internal.table;

import io.kvslab.KvArgumentException;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;

/**
 * Bitwise access to the stored blocks of a sequence, for snapshots and migration ({@code io.kvslab.snapshot}).
 * Internal (not exported): an embedder saves and restores through {@code io.kvslab.snapshot.Snapshots}.
 * Unlike {@link Sequence#readKeys}, nothing is converted: rows are copied in the stored dtype, byte for byte.
 * Restoring goes through {@link #stage}, which validates a whole image before any sequence sees a block.
 */
public final class RawBlocks {
    private RawBlocks() {}

    /**
     * Identities of the K ({@code keys}) or V blocks of one (layer, KV head), in table order. Equal values name
     * the same physical block: a block shared by forks, with a prefix cache, or across layers. The values are
     * opaque identities, not handles or addresses (no method accepts them); they stay meaningful while the block
     * is referenced.
     */
    public static long[] blockIds(Sequence s, int layer, int kvHead, boolean keys) {
        return TableAccess.of(s).blockIds(layer, kvHead, keys);
    }

    /**
     * A count that every mutation of {@code s} bumps (append, keep, range removal, shift, key aliasing, restore,
     * close): equal before and after a series of reads means no mutation ran in between, so the reads are one
     * consistent image of the sequence.
     */
    public static int modifications(Sequence s) {
        return TableAccess.of(s).modCount();
    }

    /**
     * Copies the first {@code rows} rows of block {@code block} of one (layer, KV head), raw, into
     * {@code dst[off .. off + rows * rowBytes)}. Holds the sequence's read lock while copying.
     *
     * @param rows in {@code [1, r]} where r is the number of rows this table stores in that block
     */
    public static void readRows(Sequence s, int layer, int kvHead, boolean keys, int block, int rows, byte[] dst,
                                int off) {
        TableAccess.of(s).readRawRows(layer, kvHead, keys, block, rows, dst, off);
    }

    /**
     * Allocates {@code blocks} blocks for a restore, all or nothing (memory-pressure handlers may run first); a
     * count over the store's limit is refused with {@link MemoryLimitExceededException} before anything is sized.
     * Fill them with {@link BlockStaging#write}, hand them to sequences with {@link BlockStaging#commit} and close
     * the staging: blocks no sequence took are freed, so an abandoned restore leaves nothing behind.
     */
    public static BlockStaging stage(KvStore store, int blocks) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        StagedBlocks staged = StagedBlocks.allocate(TableAccess.of(store), store.layout(),
                store.config().limitBytes(), blocks);
        return new BlockStaging(store, staged);
    }

    /**
     * Like {@link #stage(KvStore, int)}, one block per entry of {@code keyBlocks}: a K block where it is true, a V
     * block where false (K and V blocks differ in size when the store keeps K and V as different types).
     */
    public static BlockStaging stage(KvStore store, boolean[] keyBlocks) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        StagedBlocks staged = StagedBlocks.allocate(TableAccess.of(store), store.layout(),
                store.config().limitBytes(), keyBlocks);
        return new BlockStaging(store, staged);
    }
}
