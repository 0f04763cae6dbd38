package io.kvslab.bench.stress;

import io.kvslab.Sequence;

/** Decode attention over one layer of a sequence ({@code q, out: float[queryHeads * headDim]}). */
public interface AttentionBackend {
    String name();

    void decode(Sequence s, int layer, float[] q, float[] out);

    /** The plain-Java reference ({@link ReferenceAttention}); slow, independent of the native kernel. */
    static AttentionBackend reference() {
        return new AttentionBackend() {
            @Override
            public String name() {
                return "java-reference";
            }

            @Override
            public void decode(Sequence s, int layer, float[] q, float[] out) {
                ReferenceAttention.decode(s, layer, q, out);
            }
        };
    }
}
