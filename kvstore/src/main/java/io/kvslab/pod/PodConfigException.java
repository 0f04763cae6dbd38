package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/** A PoD setting is out of range; the message names it and what is allowed. */
public final class PodConfigException extends KvArgumentException {
    PodConfigException(String message) {
        super(message);
    }
}
