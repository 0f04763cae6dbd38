package io.kvslab.internal.ffm;

import io.kvslab.KvArgumentException;

/**
 * A policy kernel was called with arguments it cannot accept (a shape, range or buffer size). Thrown before the
 * native call, so nothing was computed and no output array was written.
 */
public final class PolicyKernelException extends KvArgumentException {
    public PolicyKernelException(String message) {
        super(message);
    }
}
