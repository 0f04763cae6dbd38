package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * How many rows each (layer, KV head) of a sequence keeps. A budget counts <em>all</em> kept rows, protected ones
 * (observation window, sinks) included, like SnapKV's {@code max_capacity_prompt} and kvpress's {@code n_kept}.
 * Layer rules (PyramidKV) and head allocation (Ada-KV) redistribute it; protected rows are kept even when they alone
 * exceed it (documented clamp: the budget then rises to the protected count).
 */
public sealed interface Budget permits FractionBudget, TokenBudget, DynamicBudget {
    /**
     * Keep {@code floor(n * fraction)} rows of a head with n rows, at least 1. {@code fraction} in (0, 1].
     *
     * @param fraction share of the rows to keep, in {@code (0, 1]}
     * @return the budget
     */
    static Budget fraction(double fraction) {
        return new FractionBudget(fraction);
    }

    /**
     * Keep {@code min(n, tokens)} rows of a head with n rows. {@code tokens >= 1}.
     *
     * @param tokens rows to keep per head, {@code >= 1}
     * @return the budget
     */
    static Budget tokens(int tokens) {
        return new TokenBudget(tokens);
    }

    /**
     * The policy decides the budget itself from the data (DBudgetKV).
     *
     * @return the one dynamic budget
     */
    static Budget dynamic() {
        return DynamicBudget.INSTANCE;
    }

    /**
     * Rows to keep from a head with {@code n} rows; not defined for {@link #dynamic()}.
     *
     * @param n rows the head holds, {@code >= 0}
     * @return rows to keep, in {@code [0, n]}
     */
    int rowsFor(int n);

    /**
     * The head's share of a pooled budget: {@link #rowsFor} for a fraction, the token count itself (even above
     * {@code n}) for a token budget. Rules that move budget between heads or layers (Ada-KV, PyramidKV) pool these
     * shares, so a short head's unused share goes to the others and the total stays {@code min(rows, sum of
     * shares)}; not defined for {@link #dynamic()}.
     *
     * @param n rows the head holds, {@code >= 0}
     * @return the head's nominal share, {@code >= 0}
     */
    default int nominalRows(int n) {
        return rowsFor(n);
    }
}
