package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.cache.Sequence;
import io.kvslab.kernel.Attention;

/** The library's native kernel ({@link Attention}) as the runner's {@link SequenceAttention}. */
final class NativeSequenceAttention implements SequenceAttention, AutoCloseable {
    private final Attention attention;

    NativeSequenceAttention(int threads) {
        this.attention = Attention.create(threads);
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
