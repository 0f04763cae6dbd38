package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

/** A block handle was never issued by this allocator, or its block has been freed (use after free, double free). */
public final class InvalidBlockException extends KvSlabException {
    public InvalidBlockException(String message) {
        super(message);
    }
}
