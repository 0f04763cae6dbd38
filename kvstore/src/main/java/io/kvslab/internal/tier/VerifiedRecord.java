package io.kvslab.internal.tier;

/**
 * A block record that passed every check of {@link BlockRecords#verify}, read in place: its rows are
 * {@code buffer[rowsOffset, rowsOffset + rowsLength)} of the bytes the tier returned, not a copy. A reader appends
 * them straight from there into its store (the one copy a read-through needs); {@link #toRecord} copies them out
 * for callers that keep the rows apart from the received bytes.
 *
 * <p>A view, not a value: the buffer is the tier's array, shared, and must not be changed while the view is used.
 *
 * @param kind       which rows the record holds
 * @param layer      the layer, or {@link BlockRecord#ALL}
 * @param kvHead     the KV head, or {@link BlockRecord#ALL}
 * @param positions  the rows' absolute positions (decoded: a fresh array)
 * @param buffer     the received bytes the record lies in
 * @param rowsOffset index in {@code buffer} of the first raw row byte
 * @param rowsLength bytes of raw rows, laid out as {@link BlockRecord#rows()}
 */
public record VerifiedRecord(BlockRecord.Kind kind, int layer, int kvHead, long[] positions, byte[] buffer,
                             int rowsOffset, int rowsLength) {
    /** Rows per table. */
    public int rowCount() {
        return positions.length;
    }

    /** Whether the record spans every (layer, KV head) of the layout. */
    public boolean allTables() {
        return layer == BlockRecord.ALL;
    }

    /** The record with its rows copied out of the buffer. */
    public BlockRecord toRecord() {
        byte[] rows = new byte[rowsLength];
        System.arraycopy(buffer, rowsOffset, rows, 0, rowsLength);
        return new BlockRecord(kind, layer, kvHead, positions, rows);
    }
}
