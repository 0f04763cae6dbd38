package io.kvslab.policy;

/**
 * How many rows each (layer, KV head) of a sequence keeps. A budget counts <em>all</em> kept rows, protected ones
 * (observation window, sinks) included, like SnapKV's {@code max_capacity_prompt} and kvpress's {@code n_kept}.
 * Layer rules (PyramidKV) and head allocation (Ada-KV) redistribute it; protected rows are kept even when they alone
 * exceed it (documented clamp: the budget then rises to the protected count).
 */
public sealed interface Budget {
    /**
     * Keep {@code floor(n * fraction)} rows of a head with n rows, at least 1. {@code fraction} in (0, 1].
     *
     * @param fraction share of the rows to keep, in {@code (0, 1]}
     * @return the budget
     */
    static Budget fraction(double fraction) {
        return new Fraction(fraction);
    }

    /**
     * Keep {@code min(n, tokens)} rows of a head with n rows. {@code tokens >= 1}.
     *
     * @param tokens rows to keep per head, {@code >= 1}
     * @return the budget
     */
    static Budget tokens(int tokens) {
        return new Tokens(tokens);
    }

    /**
     * The policy decides the budget itself from the data (DBudgetKV).
     *
     * @return the one dynamic budget
     */
    static Budget dynamic() {
        return Dynamic.INSTANCE;
    }

    /**
     * Rows to keep from a head with {@code n} rows; not defined for {@link Dynamic}.
     *
     * @param n rows the head holds, {@code >= 0}
     * @return rows to keep, in {@code [0, n]}
     */
    int rowsFor(int n);

    /**
     * The head's share of a pooled budget: {@link #rowsFor} for a fraction, the token count itself (even above
     * {@code n}) for a token budget. Rules that move budget between heads or layers (Ada-KV, PyramidKV) pool these
     * shares, so a short head's unused share goes to the others and the total stays {@code min(rows, sum of
     * shares)}; not defined for {@link Dynamic}.
     *
     * @param n rows the head holds, {@code >= 0}
     * @return the head's nominal share, {@code >= 0}
     */
    default int nominalRows(int n) {
        return rowsFor(n);
    }

    /**
     * Keep a fraction of the rows (the complement of kvpress's compression_ratio).
     *
     * @param fraction share of the rows to keep, in {@code (0, 1]}
     */
    record Fraction(double fraction) implements Budget {
        /**
         * Checks the fraction.
         *
         * @throws PolicyException if {@code fraction} is not in {@code (0, 1]}
         */
        public Fraction {
            if (!(fraction > 0.0 && fraction <= 1.0)) {
                throw new PolicyException("a budget fraction must be in (0, 1], got " + fraction);
            }
        }

        @Override
        public int rowsFor(int n) {
            if (n <= 0) {
                return 0;
            }
            // floor like kvpress's int(n * (1 - r)); clamped to 1 because 0 would drop the whole head (kvpress #264)
            return (int) Math.max(1, Math.min(n, Math.floor(n * fraction)));
        }

        @Override
        public String toString() {
            return Math.round(fraction * 1000) / 10.0 + "%";
        }
    }

    /**
     * Keep an absolute number of rows per (layer, KV head).
     *
     * @param tokens rows to keep per head, {@code >= 1}
     */
    record Tokens(int tokens) implements Budget {
        /**
         * Checks the count.
         *
         * @throws PolicyException if {@code tokens < 1}
         */
        public Tokens {
            if (tokens < 1) {
                throw new PolicyException("a token budget must be >= 1, got " + tokens);
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

    /** The policy's own data-dependent budget. */
    enum Dynamic implements Budget {
        /** The one instance. */
        INSTANCE;

        @Override
        public int rowsFor(int n) {
            throw new PolicyException("a dynamic budget has no fixed row count; only policies with a dynamic "
                    + "layer rule (DBudgetKV) accept Budget.dynamic()");
        }

        @Override
        public String toString() {
            return "dynamic";
        }
    }
}
