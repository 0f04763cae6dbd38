package io.kvslab.bench.model;

import io.kvslab.Sequence;

/**
 * Attention over the rows a store {@link Sequence} holds for one layer, with the contract of the library's kernel
 * ({@code io.kvslab.kernel.Attention}): queries {@code [n][heads][headDim]}, scale 1/sqrt(headDim), every query head
 * {@code h} reading kv head {@code h / groupSize}; in a prefill, query {@code i} of the last {@code n} appended rows
 * sees rows {@code 0 .. length - n + i} of its kv head.
 */
public interface SequenceAttention extends AutoCloseable {
    /** What computes the attention, for reports ("java-reference", "native kernel, 2 threads"). */
    default String name() {
        return getClass().getSimpleName();
    }

    /** One query token over every row of each kv head. */
    void decode(Sequence s, int layer, float[] q, float[] out);

    /** Causal attention for the last {@code n} rows just appended. */
    void prefill(Sequence s, int layer, float[] q, int n, float[] out);

    /** Releases what the attention holds (native scratch); the {@link StoreKvCache} using it calls this. */
    @Override
    default void close() {
    }
}
