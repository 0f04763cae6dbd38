package io.kvslab.metrics;

/**
 * A point-in-time view of one sequence's memory.
 *
 * @param sequenceId           the sequence's id in its store
 * @param referencedBytes      bytes of every block the sequence references (shared blocks count fully)
 * @param exclusiveBytes       bytes of blocks only this sequence references (what closing it would free,
 *                             unless a prefix cache also holds them)
 * @param sharedBytes          {@code referencedBytes - exclusiveBytes}: blocks shared with forks or a prefix cache
 * @param peakReferencedBytes  high-water mark of {@code referencedBytes}
 * @param rows                 K/V rows stored, summed over every (layer, KV head)
 * @param maxRows              the longest (layer, KV head)
 * @param rowsEvicted          rows dropped by {@code Sequence.keep} (compression) over the sequence's life
 */
public record SequenceMetrics(long sequenceId, long referencedBytes, long exclusiveBytes, long sharedBytes,
                              long peakReferencedBytes, long rows, int maxRows, long rowsEvicted) {
}
