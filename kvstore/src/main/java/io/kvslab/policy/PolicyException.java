package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * A compression policy was configured or called with something it cannot accept: a parameter out of range, inputs
 * whose shapes disagree, a budget kind the policy does not support. Thrown before anything is evicted, so the
 * sequence is unchanged.
 */
public final class PolicyException extends KvArgumentException {
    /**
     * An exception describing the rejected configuration or input.
     *
     * @param message names the value and what is allowed
     */
    public PolicyException(String message) {
        super(message);
    }
}
