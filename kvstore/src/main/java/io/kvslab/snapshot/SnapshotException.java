package io.kvslab.snapshot;

import io.kvslab.KvSlabException;

/**
 * A snapshot could not be written or read. This base type is thrown for I/O failures (the cause is attached);
 * the subclasses name format problems. Whatever the failure, nothing was restored and no target file was
 * replaced by a partial one.
 */
public class SnapshotException extends KvSlabException {
    /**
     * An exception without an underlying cause.
     *
     * @param message names the file and what went wrong
     */
    public SnapshotException(String message) {
        super(message);
    }

    /**
     * An exception wrapping an I/O failure.
     *
     * @param message names the file and what went wrong
     * @param cause the underlying failure
     */
    public SnapshotException(String message, Throwable cause) {
        super(message, cause);
    }
}
