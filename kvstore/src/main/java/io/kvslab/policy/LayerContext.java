package io.kvslab.policy;

import java.util.List;

/**
 * Everything a policy may read about one layer of one sequence at compression time.
 *
 * @param layer            the layer index (0-based)
 * @param queryHeads       query heads of the model; query head {@code h} reads KV head {@code h / groupSize()}
 * @param headDim          elements per head
 * @param heads            the rows of each KV head ({@code heads.size()} = KV heads); lengths may differ per head
 * @param window           the observation-window queries, or null when the policy does not need them
 * @param outputProjection the layer's W_o, or null when the policy does not need it
 */
public record LayerContext(int layer, int queryHeads, int headDim, List<HeadSnapshot> heads, WindowQueries window,
                           OutputProjection outputProjection) {
    /**
     * Checks the geometry: heads share the query heads evenly, every head has {@code headDim}, and the window and W_o
     * (when given) have matching sizes.
     *
     * @throws PolicyException if a value is out of range, inconsistent, or null where required
     */
    public LayerContext {
        if (layer < 0) {
            throw new PolicyException("layer must be >= 0, got " + layer);
        }
        if (heads == null || heads.isEmpty()) {
            throw new PolicyException("a layer needs at least one KV head");
        }
        heads = List.copyOf(heads);
        if (queryHeads < 1 || queryHeads % heads.size() != 0) {
            throw new PolicyException(queryHeads + " query heads cannot be shared evenly by " + heads.size()
                    + " KV heads (GQA needs queryHeads to be a positive multiple of kvHeads)");
        }
        for (int h = 0; h < heads.size(); h++) {
            if (heads.get(h).headDim() != headDim) {
                throw new PolicyException("KV head " + h + " has headDim " + heads.get(h).headDim()
                        + " but the layer has " + headDim);
            }
        }
        if (window != null && window.queries().length / window.size() != (long) queryHeads * headDim) {
            throw new PolicyException("each window query token must hold queryHeads * headDim = "
                    + (long) queryHeads * headDim + " floats, got " + window.queries().length / window.size());
        }
        if (outputProjection != null && outputProjection.inputDim() != (long) queryHeads * headDim) {
            throw new PolicyException("W_o must have queryHeads * headDim = " + (long) queryHeads * headDim
                    + " columns, got " + outputProjection.inputDim());
        }
    }

    /**
     * Reads one layer of a sequence from block memory into a context: every KV head's keys and values as fp32 and
     * their positions ({@code 2 * rows * headDim * 4 + rows * 8} heap bytes per head). This is what
     * {@link Compressor} does for one layer at a time; only this layer is copied.
     *
     * @param window           the layer's observation-window queries, or null when the policy needs none
     * @param outputProjection the layer's W_o, or null when the policy needs none
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @return a new context holding copies of the layer's rows
     */
    public static LayerContext read(io.kvslab.Sequence sequence, int layer, WindowQueries window,
                                    OutputProjection outputProjection) {
        return read(sequence, layer, window, outputProjection, true);
    }

    /**
     * Like {@link #read(io.kvslab.Sequence, int, WindowQueries, OutputProjection)}; with {@code rows} false only
     * positions are read ({@link HeadSnapshot#positionsOnly}), for a policy that reads no rows.
     *
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @param window the layer's observation-window queries, or null when the policy needs none
     * @param outputProjection the layer's W_o, or null when the policy needs none
     * @param rows whether to read keys and values ({@code false}: positions only)
     * @return a new context
     */
    public static LayerContext read(io.kvslab.Sequence sequence, int layer, WindowQueries window,
                                    OutputProjection outputProjection, boolean rows) {
        if (sequence == null) {
            throw new PolicyException("read needs a sequence (got null)");
        }
        io.kvslab.KvLayout layout = sequence.layout();
        if (layer < 0 || layer >= layout.layers()) {
            throw new PolicyException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        List<HeadSnapshot> heads = new java.util.ArrayList<>(layout.kvHeads());
        for (int h = 0; h < layout.kvHeads(); h++) {
            heads.add(rows ? HeadSnapshot.read(sequence, layer, h) : HeadSnapshot.positionsOnly(sequence, layer, h));
        }
        return new LayerContext(layer, layout.queryHeads(), layout.headDim(), heads, window, outputProjection);
    }

    /**
     * Number of KV heads.
     *
     * @return {@code heads().size()}
     */
    public int kvHeads() {
        return heads.size();
    }

    /**
     * Query heads per KV head.
     *
     * @return {@code queryHeads / kvHeads()}, {@code >= 1}
     */
    public int groupSize() {
        return queryHeads / heads.size();
    }

    /**
     * The rows of KV head {@code kvHead}.
     *
     * @param kvHead KV head, in {@code [0, kvHeads())}
     * @return that head's snapshot
     */
    public HeadSnapshot head(int kvHead) {
        return heads.get(kvHead);
    }

    /** The observation window, or a PolicyException naming {@code who} needs it. */
    WindowQueries requireWindow(String who) {
        if (window == null) {
            throw new PolicyException(who + " needs the observation-window queries of layer " + layer
                    + " (LayerContext.window is null)");
        }
        return window;
    }

    /** W_o, or a PolicyException naming {@code who} needs it. */
    OutputProjection requireOutputProjection(String who) {
        if (outputProjection == null) {
            throw new PolicyException(who + " needs W_o of layer " + layer + " (LayerContext.outputProjection is null)");
        }
        return outputProjection;
    }
}
