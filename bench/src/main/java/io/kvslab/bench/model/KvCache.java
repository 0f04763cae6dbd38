package io.kvslab.bench.model;

/**
 * Where a {@link Session} keeps the keys and values of the tokens it has seen, and how it attends over them. One
 * call per layer and chunk of consecutive tokens: append their rows, then compute causal attention for their queries.
 *
 * <p>Layouts: {@code q} and {@code out} are {@code [n][heads][headDim]}, {@code k} and {@code v} are
 * {@code [n][kvHeads][headDim]}; arrays may be longer than needed. Keys arrive RoPE-rotated. Query {@code t} of the
 * chunk attends over every row the cache holds for its kv head up to and including token {@code t}; scores are
 * scaled by 1/sqrt(headDim).
 */
public interface KvCache extends AutoCloseable {
    /**
     * Appends n tokens' keys and values for {@code layer} and writes their attention outputs to {@code out}.
     *
     * @param positions absolute positions of the n tokens (ascending)
     */
    void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out);

    /** Releases what the cache holds. */
    @Override
    void close();
}
