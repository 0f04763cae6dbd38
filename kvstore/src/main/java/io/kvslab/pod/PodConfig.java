package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/**
 * PoD's proximal window and variant.
 *
 * @param sinks   n_s: the first positions, always attended with each layer's own keys ({@code >= 0})
 * @param recent  n_r: the positions up to and including the query's, with own keys ({@code >= 1})
 * @param variant v2 (current query on shared keys) or v1 (shared scores)
 */
public record PodConfig(int sinks, int recent, PodVariant variant) {
    /** The paper's n_s. */
    public static final int PAPER_SINKS = 16;
    /** The paper's n_r (proximal = 4096 with the sinks). */
    public static final int PAPER_RECENT = 4080;

    /**
     * Checks the values.
     *
     * @throws KvArgumentException if {@code sinks < 0}, {@code recent < 1} or {@code variant} is null
     */
    public PodConfig {
        if (sinks < 0) {
            throw new KvArgumentException("sinks (n_s) must be >= 0, got " + sinks);
        }
        if (recent < 1) {
            throw new KvArgumentException("recent (n_r) must be >= 1 (the query's own token is proximal), got "
                    + recent);
        }
        if (variant == null) {
            throw new KvArgumentException("variant must be v1 or v2, got null");
        }
    }

    /**
     * Whether position {@code p} is proximal for a query at {@code t >= p}: a sink or one of the recent ones.
     *
     * @param p a stored row's position
     * @param t the query's position, {@code >= p}
     * @return {@code true} if the row keeps its own keys for that query
     */
    public boolean proximal(long p, long t) {
        return p < sinks || p > t - recent;
    }
}
