package io.kvslab;

import io.kvslab.KvSlabException;

/**
 * An allocation would take the reserved native bytes past the configured limit. Nothing was allocated: the
 * allocator and every block table are exactly as they were before the call.
 */
public final class MemoryLimitExceededException extends KvSlabException {
    /** Bytes the refused allocation asked for. */
    private final long requestedBytes;
    /** The store's configured limit. */
    private final long limitBytes;
    /** Bytes in blocks in use when the allocation was refused. */
    private final long liveBytes;
    /** Bytes reserved (slabs acquired) when the allocation was refused. */
    private final long reservedBytes;

    /**
     * An exception describing the refused allocation.
     *
     * @param requestedBytes bytes the allocation asked for
     * @param limitBytes the configured limit
     * @param liveBytes bytes in use
     * @param reservedBytes bytes reserved
     */
    public MemoryLimitExceededException(long requestedBytes, long limitBytes, long liveBytes, long reservedBytes) {
        super("KV memory limit exceeded: requested " + requestedBytes + " bytes, limit " + limitBytes
                + " bytes, live " + liveBytes + " bytes, reserved " + reservedBytes
                + " bytes; free or compress sequences, or raise the limit");
        this.requestedBytes = requestedBytes;
        this.limitBytes = limitBytes;
        this.liveBytes = liveBytes;
        this.reservedBytes = reservedBytes;
    }

    /**
     * Bytes the refused allocation asked for.
     *
     * @return bytes, {@code > 0}
     */
    public long requestedBytes() {
        return requestedBytes;
    }

    /**
     * The store's memory limit ({@link StoreConfig#limitBytes()}).
     *
     * @return bytes
     */
    public long limitBytes() {
        return limitBytes;
    }

    /**
     * Bytes in blocks that were in use when the allocation was refused.
     *
     * @return bytes
     */
    public long liveBytes() {
        return liveBytes;
    }

    /**
     * Bytes held in slabs when the allocation was refused: what counts against the limit.
     *
     * @return bytes
     */
    public long reservedBytes() {
        return reservedBytes;
    }
}
