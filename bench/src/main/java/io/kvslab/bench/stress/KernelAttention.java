package io.kvslab.bench.stress;

import io.kvslab.Sequence;
import io.kvslab.Attention;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The native kernel ({@link Attention}) as a stress-test backend. {@code Attention} owns native scratch and is not
 * thread-safe, so every calling thread gets its own instance; {@link #close()} frees them all.
 */
public final class KernelAttention implements AttentionBackend, AutoCloseable {
    private final int threads;
    private final List<Attention> created = new CopyOnWriteArrayList<>();
    private final ThreadLocal<Attention> perThread;

    /** @param threads kernel threads per call, in [1, 64] */
    public KernelAttention(int threads) {
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
    public void close() {
        for (Attention a : created) {
            a.close();
        }
        created.clear();
    }
}
