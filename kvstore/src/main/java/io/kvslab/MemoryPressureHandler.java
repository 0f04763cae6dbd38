package io.kvslab;

/**
 * Frees memory when an allocation would exceed the store's limit, before the store gives up with
 * {@link io.kvslab.MemoryLimitExceededException}. Register with {@link KvStore#addPressureHandler}.
 *
 * <p>Typical handlers drop unreferenced prefix-cache blocks ({@link PrefixCache} registers one itself) or compress
 * a sequence with a policy ({@link MemoryPressure#tryKeep}). The store calls its handlers in registration order, on the
 * allocating thread, after the allocator refused the request and before anything was written: nothing is
 * partially done. If a handler reports that it freed memory, the allocation is counted again and retried, at most
 * {@link KvStore#MAX_PRESSURE_ROUNDS} times.
 *
 * <p>Rules for handlers:
 * <ul>
 *   <li>Never mutate or close {@link MemoryPressure#requester()}, the sequence whose operation is allocating (its
 *       thread holds that sequence's write lock; the store fails that operation with a
 *       {@link io.kvslab.KvSlabException}).</li>
 *   <li>Evict or close <em>other</em> sequences only with {@link MemoryPressure#tryKeep} / {@link
 *       MemoryPressure#tryClose}: they skip (return {@code false}) a sequence another thread is using instead of
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
 */
@FunctionalInterface
public interface MemoryPressureHandler {
    /**
     * Tries to free memory.
     *
     * @param pressure the allocation that hit the limit, and the non-blocking operations a handler may use on other
     *         sequences
     * @return {@code true} if memory was freed and the allocation should be retried
     */
    boolean relieve(MemoryPressure pressure);
}
