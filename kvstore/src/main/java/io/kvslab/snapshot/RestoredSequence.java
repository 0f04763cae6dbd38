package io.kvslab.snapshot;

import io.kvslab.Sequence;

/**
 * One sequence restored from a snapshot.
 *
 * @param savedId   the id the sequence had when it was saved
 * @param sequence  the new sequence (its own id in the target store); the caller closes it
 */
public record RestoredSequence(long savedId, Sequence sequence) {
}
