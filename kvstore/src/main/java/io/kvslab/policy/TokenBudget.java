package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * Keep an absolute number of rows per (layer, KV head).
 *
 * @param tokens rows to keep per head, {@code >= 1}
 */
record TokenBudget(int tokens) implements Budget {
    /**
     * Checks the count.
     *
     * @throws KvArgumentException if {@code tokens < 1}
     */
    public TokenBudget {
        if (tokens < 1) {
            throw new KvArgumentException("a token budget must be >= 1, got " + tokens);
        }
    }

    @Override
    public int rowsFor(int n) {
        return Math.max(0, Math.min(n, tokens));
    }

    @Override
    public int nominalRows(int n) {
        return tokens;
    }

    @Override
    public String toString() {
        return tokens + " tokens";
    }
}
