package io.kvslab.tier;

import java.util.Optional;

/**
 * A storage tier below native memory that holds encoded block records by key: a local disk directory, a Redis
 * server, or anything else that can store opaque byte strings.
 *
 * <p>A tier stores bytes and nothing more: it does not interpret records. Every record read back is verified by the
 * caller against the record format (format version, layout fingerprint, positions, CRC32C) before any of it reaches
 * a store, so a tier that loses, truncates or garbles a value causes a miss, never a wrong block.
 *
 * <p>Faults of the tier itself (full, unreachable, slow, restarted) are not exceptions: {@link #put} returns
 * {@code false}, {@link #get} returns empty, and the tier counts them in {@link #stats()}. No call blocks longer
 * than the timeout the implementation was configured with. Caller mistakes (a null key or record, a call after
 * {@link #close()}) throw. Implementations are safe for concurrent use.
 */
public interface BlockTier extends AutoCloseable {

    /**
     * A short name for logs and metrics, such as {@code "disk"} or {@code "redis"}.
     *
     * @return the name, not blank
     */
    String name();

    /**
     * Stores {@code record} under {@code key}, replacing any earlier value.
     *
     * @param key the record's key
     * @param record the encoded record, not null
     * @return {@code true} if the tier holds the record now; {@code false} if it declined or failed (full,
     *     unreachable, timed out), which is counted and leaves any earlier value for the key unspecified
     */
    boolean put(BlockKey key, byte[] record);

    /**
     * The bytes stored under {@code key}: empty when absent, expired, evicted, unreachable or timed out.
     * The caller verifies the bytes before use.
     *
     * @param key the record's key
     * @return the stored bytes, or empty
     */
    Optional<byte[]> get(BlockKey key);

    /**
     * The values under {@code keys}, in order, as {@link #get} would return them one by one. Tiers that can batch
     * (Redis pipelines the requests) override it; every element is empty when the batch failed as a whole.
     *
     * @param keys the keys, in order
     * @return one element per key, in the same order
     */
    default java.util.List<Optional<byte[]>> getAll(java.util.List<BlockKey> keys) {
        java.util.List<Optional<byte[]>> out = new java.util.ArrayList<>(keys.size());
        for (BlockKey k : keys) {
            out.add(get(k));
        }
        return out;
    }

    /**
     * Removes the value under {@code key}.
     *
     * @param key the record's key
     * @return {@code true} if a value was removed; {@code false} if there was none or the tier could not be reached
     */
    boolean remove(BlockKey key);

    /**
     * Removes the values under {@code keys}, as {@link #remove} would one by one. Tiers that can batch override it so
     * that an unreachable or paused tier costs one timeout for the batch (Redis pipelines the deletes), not one per
     * key: swap-out's cleanup and {@link SwappedSequence#close()} remove all the records of a sequence this way.
     *
     * @param keys the keys
     * @return how many values were removed (those that existed and could be reached)
     */
    default long removeAll(java.util.List<BlockKey> keys) {
        long removed = 0;
        for (BlockKey k : keys) {
            removed += remove(k) ? 1 : 0;
        }
        return removed;
    }

    /**
     * Counters since the tier was opened.
     *
     * @return a snapshot of the counters
     */
    TierStats stats();

    /** Releases the tier's resources (connections, file handles). Stored values stay where the tier keeps them. */
    @Override
    void close();
}
