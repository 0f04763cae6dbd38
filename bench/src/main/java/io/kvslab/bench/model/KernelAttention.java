package io.kvslab.bench.model;

import io.kvslab.cache.Sequence;

/** The library's native attention kernel as a {@link SequenceAttention}. */
final class KernelAttention {
    private KernelAttention() {}

    static SequenceAttention create() {
        throw new UnsupportedOperationException("the native attention kernel (io.kvslab.kernel.Attention) is not on this branch yet");
    }
}
