package io.kvslab.bench.model;

/**
 * Sees every layer's attention for every chunk of tokens a {@link Session} runs: the (RoPE-rotated) queries and the
 * per-head attention outputs o_h before the output projection W_o (see {@link ModelWeights#wo(int)}).
 *
 * <p>Layouts are {@code [n][heads][headDim]}: head {@code h} of token {@code t} is at {@code (t * heads + h) * headDim}.
 * The arrays are the session's scratch buffers, possibly longer than {@code n} tokens, valid only during the call:
 * copy what you keep, and do not write to them.
 */
@FunctionalInterface
public interface AttentionObserver {
    void onAttention(int layer, long[] positions, int n, float[] q, float[] out);
}
