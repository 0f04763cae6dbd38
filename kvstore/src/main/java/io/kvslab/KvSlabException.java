package io.kvslab;

/**
 * Root of every exception KVSlab throws on purpose. Each subclass names what was wrong and what is allowed;
 * an operation that throws one leaves the store as it was before the call.
 */
public class KvSlabException extends RuntimeException {
    public KvSlabException(String message) {
        super(message);
    }

    public KvSlabException(String message, Throwable cause) {
        super(message, cause);
    }
}
