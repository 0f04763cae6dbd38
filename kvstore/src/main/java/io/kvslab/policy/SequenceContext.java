package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import java.util.List;

/**
 * Every layer of one sequence in memory at once, checked: what {@link CompressionPolicy#select} makes of the list of
 * layer contexts it is given (evaluations that run several policies on the same rows build them with
 * {@link LayerContext#read} per layer). A long context should be compressed
 * with {@link Compressor#compress(io.kvslab.Sequence, CompressionPolicy, Budget, java.util.function.IntFunction)} instead, which holds
 * one layer at a time (this holds all of them: {@code layers} times the heap of one).
 *
 * @param layers one context per layer, in layer order ({@code layers.get(l).layer() == l}), all with the same geometry;
 *         copied
 */
record SequenceContext(List<LayerContext> layers) {
    /**
     * Checks that there is at least one layer, that layer {@code l} sits at index {@code l} and that all layers share
     * one geometry.
     *
     * @throws KvArgumentException if the list is null or empty, or a layer is out of place or of another geometry
     */
    SequenceContext {
        if (layers == null || layers.isEmpty()) {
            throw new KvArgumentException("a sequence context needs at least one layer");
        }
        for (int l = 0; l < layers.size(); l++) {   // a loop: List.of(...).contains(null) itself throws
            if (layers.get(l) == null) {
                throw new KvArgumentException("layers must not contain null (position " + l + ")");
            }
        }
        layers = List.copyOf(layers);
        LayerContext first = layers.get(0);
        for (int l = 0; l < layers.size(); l++) {
            LayerContext c = layers.get(l);
            if (c.layer() != l) {
                throw new KvArgumentException("layer contexts must be in layer order 0.." + (layers.size() - 1)
                        + "; position " + l + " holds layer " + c.layer());
            }
            if (c.queryHeads() != first.queryHeads() || c.kvHeads() != first.kvHeads()
                    || c.headDim() != first.headDim()) {
                throw new KvArgumentException("layer " + l + " has shape (" + c.queryHeads() + " query heads, "
                        + c.kvHeads() + " KV heads, headDim " + c.headDim() + ") but layer 0 has ("
                        + first.queryHeads() + ", " + first.kvHeads() + ", " + first.headDim() + ")");
            }
        }
    }

    /**
     * Number of layers.
     *
     * @return {@code layers().size()}, {@code >= 1}
     */
    int layerCount() {
        return layers.size();
    }

    /**
     * Layer {@code l}.
     *
     * @param l layer index, in {@code [0, layerCount())}
     * @return that layer's context
     */
    LayerContext layer(int l) {
        return layers.get(l);
    }
}
