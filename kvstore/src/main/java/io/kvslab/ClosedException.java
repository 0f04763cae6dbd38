package io.kvslab;

import io.kvslab.KvSlabException;

/** A store or sequence was used after {@code close()}. */
public final class ClosedException extends KvSlabException {
    /**
     * An exception for a use after close.
     *
     * @param what the closed object, as the message should name it (e.g. {@code "sequence 3"})
     */
    public ClosedException(String what) {
        super(what + " is closed; open a new one");
    }
}
