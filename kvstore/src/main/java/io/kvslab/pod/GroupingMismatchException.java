package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/**
 * A layer grouping was calibrated for another model (other weights or another geometry) than the one it is used
 * with. The message names both models; recalibrate for the model in use.
 */
public final class GroupingMismatchException extends KvArgumentException {
    GroupingMismatchException(String message) {
        super(message);
    }
}
