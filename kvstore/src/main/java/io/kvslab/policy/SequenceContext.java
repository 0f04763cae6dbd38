package io.kvslab.policy;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

import java.util.ArrayList;
import java.util.List;

/**
 * The inputs of one compression pass over one sequence: one {@link LayerContext} per layer, in layer order.
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

    /**
     * Reads every (layer, KV head) of a sequence into a context.
     *
     * @param windows           per layer, the observation-window queries (null, or null entries, when the policy
     *                          needs none)
     * @param outputProjections per layer, W_o (null, or null entries, when the policy needs none)
     */
    public static SequenceContext read(Sequence sequence, List<WindowQueries> windows,
                                       List<OutputProjection> outputProjections) {
        KvLayout layout = sequence.layout();
        if (windows != null && windows.size() != layout.layers()) {
            throw new PolicyException("need one window entry per layer (" + layout.layers() + "), got "
                    + windows.size());
        }
        if (outputProjections != null && outputProjections.size() != layout.layers()) {
            throw new PolicyException("need one W_o entry per layer (" + layout.layers() + "), got "
                    + outputProjections.size());
        }
        List<LayerContext> layers = new ArrayList<>(layout.layers());
        for (int l = 0; l < layout.layers(); l++) {
            List<HeadSnapshot> heads = new ArrayList<>(layout.kvHeads());
            for (int h = 0; h < layout.kvHeads(); h++) {
                heads.add(HeadSnapshot.read(sequence, l, h));
            }
            layers.add(new LayerContext(l, layout.queryHeads(), layout.headDim(), heads,
                    windows == null ? null : windows.get(l),
                    outputProjections == null ? null : outputProjections.get(l)));
        }
        return new SequenceContext(layers);
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
