package io.kvslab;

/**
 * An object was used by two threads at once where that is not allowed, or a memory-pressure handler reached a
 * sequence that another thread is using (waiting for it could deadlock): one {@link Attention} (or
 * {@code PodAttention}) running two calls at once or closed during a call, or a handler modifying a busy sequence.
 * Nothing was changed; retry on an idle object, or give each thread its own.
 */
public final class ConcurrentUseException extends KvSlabException {
    /**
     * An exception describing the conflicting use.
     *
     * @param message names the object, the conflicting call and what to do instead
     */
    public ConcurrentUseException(String message) {
        super(message);
    }
}
