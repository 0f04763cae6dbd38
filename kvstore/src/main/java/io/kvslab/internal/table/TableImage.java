package io.kvslab.internal.table;

/**
 * The block table of one (layer, KV head) to restore, referring to staged blocks by index
 * ({@link BlockStaging}). Two tables naming the same index share that block.
 *
 * @param positions    absolute positions of the rows, strictly increasing, {@code >= 0}; its length is the
 *                     table's row count
 * @param keyBlocks    staged block index of each K block, {@code ceil(rows / tokensPerBlock)} of them
 * @param valueBlocks  staged block index of each V block, as many
 */
public record TableImage(long[] positions, int[] keyBlocks, int[] valueBlocks) {
    /** Rows of the table. */
    public int rows() {
        return positions.length;
    }
}
