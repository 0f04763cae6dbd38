package io.kvslab;

import io.kvslab.KvSlabException;

/**
 * An allocation would take the reserved native bytes past the configured limit. Nothing was allocated: the
 * allocator and every block table are exactly as they were before the call.
 */
public final class MemoryLimitExceededException extends KvSlabException {
    private final long requestedBytes;
    private final long limitBytes;
    private final long liveBytes;
    private final long reservedBytes;

    public MemoryLimitExceededException(long requestedBytes, long limitBytes, long liveBytes, long reservedBytes) {
        super("KV memory limit exceeded: requested " + requestedBytes + " bytes, limit " + limitBytes
                + " bytes, live " + liveBytes + " bytes, reserved " + reservedBytes
                + " bytes; free or compress sequences, or raise the limit");
        this.requestedBytes = requestedBytes;
        this.limitBytes = limitBytes;
        this.liveBytes = liveBytes;
        this.reservedBytes = reservedBytes;
    }

    public long requestedBytes() {
        return requestedBytes;
    }

    public long limitBytes() {
        return limitBytes;
    }

    public long liveBytes() {
        return liveBytes;
    }

    public long reservedBytes() {
        return reservedBytes;
    }
}
