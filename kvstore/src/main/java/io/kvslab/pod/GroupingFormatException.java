package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/** A layer-grouping file or map is malformed; the message names the line or entry and what is expected. */
public final class GroupingFormatException extends KvArgumentException {
    GroupingFormatException(String message) {
        super(message);
    }
}
