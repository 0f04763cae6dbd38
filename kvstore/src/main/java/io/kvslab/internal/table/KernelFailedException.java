package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

/**
 * A native kernel returned an error code after its arguments had passed validation (e.g. out of memory).
 *
 * <p>Internal: callers see and catch it as a {@link KvSlabException}.
 */
public final class KernelFailedException extends KvSlabException {
    private final int code;

    public KernelFailedException(String kernel, int code) {
        super(kernel + " failed with native error code " + code + " (" + describe(code) + ")");
        this.code = code;
    }

    /** The native return code: 1 = argument rejected by the C side, 2 = scratch allocation failed. */
    public int code() {
        return code;
    }

    private static String describe(int code) {
        return switch (code) {
            case 1 -> "argument rejected by the native side; the Java validation should have caught it, please report";
            case 2 -> "out of native memory for scratch buffers";
            default -> "unknown error";
        };
    }
}
