package io.kvslab.bench.serve;

import io.kvslab.Attention;
import io.kvslab.Sequence;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.StoreKvCache;

/**
 * The {@link KvCache} of each admitted request, over its store sequence. Prompt chunks attend through one
 * single-thread kernel shared by all requests (a chunk's rows are split by the kernel itself); decode steps do not
 * use these caches but one batched call per layer ({@link DecodeStep}).
 */
final class SequenceCaches implements AutoCloseable {
    private final Attention prefillAttention = Attention.create(1);

    /** A cache on {@code s}; closing it closes the sequence, not the shared kernel. */
    KvCache open(Sequence s) {
        return new StoreKvCache(s, KernelAttention.borrowing(prefillAttention));
    }

    @Override
    public void close() {
        prefillAttention.close();
    }
}
