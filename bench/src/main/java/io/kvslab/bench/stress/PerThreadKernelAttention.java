package io.kvslab.bench.stress;

import io.kvslab.bench.model.SequenceAttention;

import io.kvslab.Sequence;
import io.kvslab.Attention;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The native kernel ({@link Attention}) shared by many threads (the stress workers); the model runner's
 * single-threaded {@link io.kvslab.bench.model.KernelAttention} holds one instance. {@code Attention} owns native scratch and is not
 * thread-safe, so every calling thread gets its own instance; {@link #close()} frees them all.
 */
public final class PerThreadKernelAttention implements SequenceAttention {
    private final int threads;
    private final List<Attention> created = new CopyOnWriteArrayList<>();
    private final ThreadLocal<Attention> perThread;

    /** @param threads kernel threads per call, in [1, 64] */
    public PerThreadKernelAttention(int threads) {
        this.threads = threads;
        Attention.create(threads).close();   // validates threads now rather than on the first call
        this.perThread = ThreadLocal.withInitial(() -> {
            Attention a = Attention.create(threads);
            created.add(a);
            return a;
        });
    }

    @Override
    public String name() {
        return "native kernel, " + threads + (threads == 1 ? " thread" : " threads");
    }

    @Override
    public void decode(Sequence s, int layer, float[] q, float[] out) {
        perThread.get().decode(s, layer, q, out);
    }

    @Override
    public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
        perThread.get().prefill(s, layer, q, n, out);
    }

    @Override
    public void close() {
        for (Attention a : created) {
            a.close();
        }
        created.clear();
    }
}
