package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * Keep a fraction of the rows (the complement of kvpress's compression_ratio).
 *
 * @param fraction share of the rows to keep, in {@code (0, 1]}
 */
record FractionBudget(double fraction) implements Budget {
    /**
     * Checks the fraction.
     *
     * @throws KvArgumentException if {@code fraction} is not in {@code (0, 1]}
     */
    public FractionBudget {
        if (!(fraction > 0.0 && fraction <= 1.0)) {
            throw new KvArgumentException("a budget fraction must be in (0, 1], got " + fraction);
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
