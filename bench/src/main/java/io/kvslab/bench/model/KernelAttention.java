package io.kvslab.bench.model;

import io.kvslab.Sequence;
import io.kvslab.Attention;

/**
 * The library's native attention kernel ({@link Attention}) as a {@link SequenceAttention}: either its own kernel
 * ({@link #create}, closed with it) or one lent by an owner that closes it ({@link #borrowing}: a scheduler whose one
 * kernel serves every request's cache).
 */
public final class KernelAttention implements SequenceAttention {
    private final Attention attention;
    private final int threads;
    private final boolean owned;

    private KernelAttention(Attention attention, int threads, boolean owned) {
        this.attention = attention;
        this.threads = threads;
        this.owned = owned;
    }

    /** @param threads kernel threads (1 suits small models: a decode over a few hundred rows is not worth splitting) */
    public static KernelAttention create(int threads) {
        return new KernelAttention(Attention.create(threads), threads, true);
    }

    /**
     * @param threads kernel threads
     * @param precision the decode arithmetic of quantised rows ({@link Attention.QueryPrecision})
     */
    public static KernelAttention create(int threads, Attention.QueryPrecision precision) {
        return new KernelAttention(Attention.create(threads, precision), threads, true);
    }

    /** {@code kernel} lent by its owner: closing this leaves it open. */
    public static KernelAttention borrowing(Attention kernel) {
        return new KernelAttention(kernel, 0, false);
    }

    @Override
    public String name() {
        return !owned ? "native kernel (shared)" : "native kernel, " + threads + (threads == 1 ? " thread" : " threads");
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
        if (owned) {
            attention.close();
        }
    }
}
