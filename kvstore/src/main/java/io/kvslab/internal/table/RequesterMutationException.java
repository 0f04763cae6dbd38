package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

/**
 * A memory-pressure handler tried to mutate or close the sequence whose own allocation it was called for (that
 * thread holds the sequence's write lock in the middle of the operation). The store passes it to the caller of
 * the allocating operation unchanged, which then fails with nothing written.
 */
public final class RequesterMutationException extends KvSlabException {
    public RequesterMutationException(long sequenceId) {
        super("a memory-pressure handler mutated or closed sequence " + sequenceId + ", whose own allocation it "
                + "was called for; handlers must skip MemoryPressure.requester()");
    }
}
