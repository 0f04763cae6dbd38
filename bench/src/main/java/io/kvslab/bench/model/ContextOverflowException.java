package io.kvslab.bench.model;

import io.kvslab.KvSlabException;

/** More tokens were fed to a model than its context length allows. */
public final class ContextOverflowException extends KvSlabException {
    public ContextOverflowException(String message) {
        super(message);
    }
}
