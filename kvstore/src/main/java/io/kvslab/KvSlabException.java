package io.kvslab;

/**
 * Root of every exception KVSlab throws on purpose. Each subclass names what was wrong and what is allowed;
 * an operation that throws one leaves the store as it was before the call.
 */
public class KvSlabException extends RuntimeException {
    /**
     * An exception with a message naming what was wrong and what is allowed.
     *
     * @param message the description
     */
    public KvSlabException(String message) {
        super(message);
    }

    /**
     * An exception caused by another (an I/O error, a missing class).
     *
     * @param message the description
     * @param cause the underlying failure
     */
    public KvSlabException(String message, Throwable cause) {
        super(message, cause);
    }
}
