package io.kvslab.policy;

/**
 * First step of a policy (kvpress's {@code score}): one fp32 importance score per row of every KV head of a layer;
 * higher means more worth keeping. Scores of protected rows are computed but never compared.
 */
public interface Scorer {
    /**
     * Scores of every row, {@code [kvHead][row]}.
     *
     * <p>A policy runs the built-in window-attention scorer ({@link Policies#windowAttention()}) on the native scratch
     * of the {@link Compressor} that runs it; called directly (e.g. by a custom scorer that composes it), it sets up
     * scratch of its own for the call.
     *
     * @param layer the layer's rows and inputs
     * @return {@code [kvHead][row]}: higher is more important
     */
    float[][] score(LayerContext layer);

    /**
     * How many observation-window queries the scorer reads per layer (0 if none).
     *
     * @return queries per layer, {@code >= 0}
     */
    default int windowQueries() {
        return 0;
    }

    /**
     * Whether the scorer reads the rows' keys or values ({@link HeadSnapshot#keys()}, {@code values()}); a scorer
     * that needs only lengths and positions says false, and {@link Compressor} then reads no row data at all.
     *
     * @return {@code true} if it reads keys or values
     */
    default boolean readsRows() {
        return true;
    }
}
