package io.kvslab.pod;

import io.kvslab.Sequence;

/**
 * Ordinary attention of one query token over every row of a layer's table, own and aliased key blocks alike:
 * what {@link PodDecoder} runs for PoD v2 and for every layer before sharing starts. The default is the native
 * kernel ({@link io.kvslab.Attention#decode}); a caller may plug in its own (e.g. a plain-Java reference).
 */
@FunctionalInterface
public interface DenseDecode {
    /**
     * Attention of one new token's queries over every row of {@code layer} of {@code sequence}.
     *
     * @param sequence the open sequence
     * @param layer    layer index, in {@code [0, layers)}
     * @param q        {@code float[queryHeads * headDim]}, RoPE applied, not scaled
     * @param out      same shape, written
     */
    void decode(Sequence sequence, int layer, float[] q, float[] out);
}
