package io.kvslab;

/**
 * What a {@link MemoryPressureHandler} is told about a refused allocation.
 *
 * @param store           the store whose limit was hit
 * @param requester       the sequence whose operation allocates (never mutate it in a handler), or {@code null}
 *                        when the allocation is not on behalf of a sequence (a snapshot restore)
 * @param requestedBytes  bytes the operation needs in total (whole blocks)
 * @param shortfallBytes  bytes that must be freed for it to fit: {@code requestedBytes} minus free block slots
 *                        and room under the limit (whole blocks); free at least this much
 * @param limitBytes      the store's limit
 * @param liveBytes       live bytes when the allocation was refused
 * @param reservedBytes   reserved bytes when the allocation was refused
 * @param attempt         1 on the first refusal of this operation, 2 on the second, ...
 */
public record MemoryPressure(KvStore store, Sequence requester, long requestedBytes, long shortfallBytes,
                             long limitBytes,
                             long liveBytes, long reservedBytes, int attempt) {
}
