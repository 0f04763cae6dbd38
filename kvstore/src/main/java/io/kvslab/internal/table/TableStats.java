package io.kvslab.internal.table;

/**
 * Block counts of one sequence's tables (see {@link SequenceTables#stats()}).
 *
 * @param referencedBlocks  blocks the tables reference (shared ones included)
 * @param exclusiveBlocks   referenced blocks with reference count 1
 * @param peakReferencedBlocks  most blocks referenced at once
 * @param rows              rows over all tables
 * @param maxRows           rows of the longest table
 * @param rowsEvicted       rows dropped by keep (compression) over the sequence's life
 * @param exclusiveBytes    bytes of the exclusive blocks (K and V blocks differ in size when their types do)
 */
public record TableStats(long referencedBlocks, long exclusiveBlocks, long peakReferencedBlocks, long rows,
                         int maxRows, long rowsEvicted, long exclusiveBytes) {
}
