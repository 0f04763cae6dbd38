package io.kvslab.bench.model;

import io.kvslab.Sequence;
import io.kvslab.Attention;

/** The library's native attention kernel ({@link Attention}) as a {@link SequenceAttention}; owns its native scratch. */
public final class KernelAttention implements SequenceAttention {
    private final Attention attention;
    private final int threads;

    private KernelAttention(Attention attention, int threads) {
        this.attention = attention;
        this.threads = threads;
    }

    /** @param threads kernel threads (1 suits small models: a decode over a few hundred rows is not worth splitting) */
    public static KernelAttention create(int threads) {
        return new KernelAttention(Attention.create(threads), threads);
    }

    @Override
    public String name() {
        return "native kernel, " + threads + (threads == 1 ? " thread" : " threads");
    }

    @Override
    public void decode(Sequence s, int layer, float[] q, float[] out) {
        attention.decode(s, layer, q, out);
    }

    @Override
    public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
        attention.prefill(s, layer, q, n, out);
    }

    @Override
    public void close() {
        attention.close();
    }
}
