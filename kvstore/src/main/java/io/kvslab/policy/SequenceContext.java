package io.kvslab.policy;

import java.util.List;

/**
 * Every layer of one sequence in memory at once, for {@link CompressionPolicy#select}: evaluations that run several
 * policies on the same rows build it from {@link LayerContext#read} per layer. A long context should be compressed
 * with {@link Compressor#compress(io.kvslab.Sequence, CompressionPolicy, Budget, LayerInputs)} instead, which holds
 * one layer at a time (this holds all of them: {@code layers} times the heap of one).
 */
public record SequenceContext(List<LayerContext> layers) {
    public SequenceContext {
        if (layers == null || layers.isEmpty()) {
            throw new PolicyException("a sequence context needs at least one layer");
        }
        layers = List.copyOf(layers);
        LayerContext first = layers.get(0);
        for (int l = 0; l < layers.size(); l++) {
            LayerContext c = layers.get(l);
            if (c.layer() != l) {
                throw new PolicyException("layer contexts must be in layer order 0.." + (layers.size() - 1)
                        + "; position " + l + " holds layer " + c.layer());
            }
            if (c.queryHeads() != first.queryHeads() || c.kvHeads() != first.kvHeads()
                    || c.headDim() != first.headDim()) {
                throw new PolicyException("layer " + l + " has shape (" + c.queryHeads() + " query heads, "
                        + c.kvHeads() + " KV heads, headDim " + c.headDim() + ") but layer 0 has ("
                        + first.queryHeads() + ", " + first.kvHeads() + ", " + first.headDim() + ")");
            }
        }
    }

    /** Number of layers. */
    public int layerCount() {
        return layers.size();
    }

    /** Layer {@code l}. */
    public LayerContext layer(int l) {
        return layers.get(l);
    }
}
