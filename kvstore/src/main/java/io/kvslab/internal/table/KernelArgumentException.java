package io.kvslab.internal.table;

import io.kvslab.KvArgumentException;

/**
 * An argument of a native kernel call was rejected before the downcall: a shape out of range, a segment that is
 * too small, not native, read-only where it is written, closed, or overlapping another, offsets or lengths that
 * do not describe the blocks. The message names the argument and what is allowed; nothing was computed or written.
 *
 * <p>Internal: callers see and catch it as a {@link KvArgumentException}.
 */
public final class KernelArgumentException extends KvArgumentException {
    public KernelArgumentException(String message) {
        super(message);
    }
}
