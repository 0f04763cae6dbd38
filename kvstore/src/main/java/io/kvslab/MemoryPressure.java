package io.kvslab;

/**
 * What a pressure handler is told about a refused allocation, and the non-blocking operations it may use on other
 * sequences.
 *
 * <p><b>Handlers.</b> A pressure handler, a {@code Predicate<MemoryPressure>} registered with
 * {@link KvStore#addPressureHandler}, frees memory when an allocation would exceed the store's limit, before the
 * store gives up with {@link io.kvslab.MemoryLimitExceededException}; it returns {@code true} if it freed memory
 * and the allocation should be retried.
 *
 * <p>Typical handlers drop unreferenced prefix-cache blocks ({@link PrefixCache} registers one itself) or compress
 * a sequence with a policy ({@link #tryKeep}). The store calls its handlers in registration order, on the
 * allocating thread, after the allocator refused the request and before anything was written: nothing is
 * partially done. If a handler reports that it freed memory, the allocation is counted again and retried, at most
 * {@link KvStore#MAX_PRESSURE_ROUNDS} times.
 *
 * <p>Rules for handlers:
 * <ul>
 *   <li>Never mutate or close {@link #requester()}, the sequence whose operation is allocating (its
 *       thread holds that sequence's write lock; the store fails that operation with a
 *       {@link io.kvslab.KvSlabException}).</li>
 *   <li>Evict or close <em>other</em> sequences only with {@link #tryKeep} / {@link
 *       #tryClose}: they skip (return {@code false}) a sequence another thread is using instead of
 *       waiting for it, which could deadlock; a plain {@code keep} or {@code close} of a busy sequence inside a
 *       handler throws {@link io.kvslab.ConcurrentUseException}.</li>
 *   <li>Do not call {@link KvStore#compact()} or {@link KvStore#close()} (the allocating thread holds the
 *       store's shared lock: both throw at once; compaction also would not help: freed blocks are reusable at
 *       once).</li>
 *   <li>Allocations made inside a handler do not call the handlers again; if they hit the limit they fail.</li>
 *   <li>Handlers may run on several threads at once; they must be thread-safe.</li>
 *   <li>An exception thrown by a handler ends the attempt: the caller gets the
 *       {@code MemoryLimitExceededException} with the handler's exception attached as suppressed.</li>
 * </ul>
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
    /**
     * Evicts rows of another sequence if that is possible without waiting: {@code victim.keep(layer, kvHead,
     * rows)} unless the victim is the {@link #requester()}, closed, or in use by another thread (a decode, an
     * append); then nothing happens and the result is {@code false}. A handler runs on the allocating thread,
     * which holds its own sequence's write lock, so waiting for a second sequence could deadlock against a
     * thread doing the mirror image; this is why a handler must use this (or {@link #tryClose}) on other
     * sequences. Bad arguments still throw {@link KvArgumentException}.
     *
     * @param victim a sequence of the same store
     * @param layer layer index, in {@code [0, layers)}
     * @param kvHead KV head index, in {@code [0, kvHeads)}
     * @param rows the rows to keep, as for {@link Sequence#keep(int, int, int[])}
     * @return whether the rows were kept (and the others freed)
     */
    public boolean tryKeep(Sequence victim, int layer, int kvHead, int[] rows) {
        if (victim == null || victim == requester || victim.isClosed()) {
            return false;
        }
        try {
            victim.keep(layer, kvHead, rows);
            return true;
        } catch (ConcurrentUseException | ClosedException e) {
            return false;
        }
    }

    /**
     * Closes another sequence if that is possible without waiting (see {@link #tryKeep}); {@code false} if it is
     * the requester, closed already, or in use by another thread.
     *
     * @param victim a sequence of the same store
     * @return {@code true} if it was closed
     */
    public boolean tryClose(Sequence victim) {
        if (victim == null || victim == requester || victim.isClosed()) {
            return false;
        }
        try {
            victim.close();
            return victim.isClosed();
        } catch (ConcurrentUseException | ClosedException e) {
            return false;
        }
    }

    /**
     * Swaps another sequence out to {@code tier} if that is possible without waiting (see {@link #tryKeep}):
     * empty if it is the requester, closed, in use by another thread, or holds a non-finite value (which no record
     * may carry), and then nothing changed. The handle
     * returned swaps it back in later ({@link KvStore#swapIn}).
     *
     * @param victim a sequence of the same store
     * @param tier where the victim's blocks go
     * @return the handle to swap it back in with, or empty if nothing was done
     * @throws io.kvslab.tier.TierRecordException with reason {@code DECLINED} if the tier declined a record (the victim is unchanged)
     */
    public java.util.Optional<io.kvslab.tier.SwappedSequence> trySwapOut(Sequence victim,
                                                                         io.kvslab.tier.BlockTier tier) {
        if (tier == null) {
            throw new KvArgumentException("tier must not be null");
        }
        if (victim == null || victim == requester || victim.isClosed()) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(victim.swapOut(tier));
        } catch (ConcurrentUseException | ClosedException e) {
            return java.util.Optional.empty();
        } catch (io.kvslab.tier.TierRecordException e) {
            if (e.reason() == io.kvslab.tier.TierRecordException.Reason.NON_FINITE_VALUE) {
                return java.util.Optional.empty();   // the victim holds a value no record may carry: try another
            }
            throw e;
        }
    }
}
