package io.kvslab.tier;

import io.kvslab.KvLayout;

import java.util.List;

/**
 * A sequence swapped out to a {@link BlockTier} by {@link io.kvslab.Sequence#swapOut}: the tier holds its
 * distinct blocks as records (one per dense column of blocks, one per block elsewhere); this handle holds what is
 * needed to rebuild the tables (per (layer, KV head) the positions and which block each slot names) and the CRC32C
 * of every record, so a record replaced by another intact one is caught too. {@link io.kvslab.KvStore#swapIn} rebuilds the sequence bitwise.
 *
 * <p>States: open (records in the tier) until a successful swap-in or {@link #close()}; both remove the records
 * from the tier. A failed swap-in leaves the handle open (retry after freeing memory, or close it and recompute).
 * Thread-safe. Only handles returned by {@code swapOut} are accepted by {@code swapIn}.
 */
public interface SwappedSequence extends AutoCloseable {

    /**
     * The id the sequence had when it was swapped out (a swap-in creates a sequence with a new id).
     *
     * @return the original sequence id
     */
    long sequenceId();

    /**
     * The layout of the store it was swapped out of; a swap-in needs a store of the same layout.
     *
     * @return the source store's layout
     */
    KvLayout layout();

    /**
     * The tier holding the records.
     *
     * @return the tier the records were written to
     */
    BlockTier tier();

    /**
     * Keys of the records (docs/tiers.md, "Swap": column records and block records).
     *
     * @return an unmodifiable list of the record keys
     */
    List<BlockKey> keys();

    /**
     * Bytes of all records written.
     *
     * @return bytes, {@code >= 0}
     */
    long recordBytes();

    /**
     * Native bytes a swap-in allocates: one block per distinct block swapped out.
     *
     * @return bytes, a multiple of the layout's block size
     */
    long blockBytes();

    /**
     * Rows the sequence held in one (layer, KV head).
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param kvHead KV head index, in {@code [0, kvHeads)}
     * @return the row count, {@code >= 0}
     */
    int length(int layer, int kvHead);

    /**
     * Positions of those rows (a copy).
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param kvHead KV head index, in {@code [0, kvHeads)}
     * @return a new array of ascending positions
     */
    long[] positions(int layer, int kvHead);

    /**
     * Whether the records are still in the tier (not yet swapped in or closed).
     *
     * @return {@code true} while the records are in the tier
     */
    boolean isOpen();

    /** Removes the records from the tier (best effort: a tier that cannot be reached keeps them). Idempotent. */
    @Override
    void close();
}
