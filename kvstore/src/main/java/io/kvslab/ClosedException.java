package io.kvslab;

import io.kvslab.KvSlabException;

/** A store or sequence was used after {@code close()}. */
public final class ClosedException extends KvSlabException {
    public ClosedException(String what) {
        super(what + " is closed; open a new one");
    }
}
