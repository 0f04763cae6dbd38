package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import java.util.List;

/**
 * Everything a policy may read about one layer of one sequence at compression time.
 *
 * @param layer            the layer index (0-based)
 * @param queryHeads       query heads of the model; query head {@code h} reads KV head {@code h / groupSize()}
 * @param headDim          elements per head
 * @param heads            the rows of each KV head ({@code heads.size()} = KV heads); lengths may differ per head
 * @param inputs           the observation-window queries and W_o, each null when the policy does not need it
 *                         (null: {@link LayerInputs#none()})
 */
public record LayerContext(int layer, int queryHeads, int headDim, List<HeadSnapshot> heads, LayerInputs inputs) {
    /**
     * Checks the geometry: heads share the query heads evenly, every head has {@code headDim}, and the window and W_o
     * (when given) have matching sizes: a window token and a row of W_o hold {@code queryHeads * headDim} floats.
     *
     * @throws KvArgumentException if a value is out of range, inconsistent, or null where required
     */
    public LayerContext {
        if (layer < 0) {
            throw new KvArgumentException("layer must be >= 0, got " + layer);
        }
        if (heads == null || heads.isEmpty()) {
            throw new KvArgumentException("a layer needs at least one KV head");
        }
        for (int h = 0; h < heads.size(); h++) {   // a loop: List.of(...).contains(null) itself throws
            if (heads.get(h) == null) {
                throw new KvArgumentException("heads must not contain null (KV head " + h + ")");
            }
        }
        heads = List.copyOf(heads);
        if (queryHeads < 1 || queryHeads % heads.size() != 0) {
            throw new KvArgumentException(queryHeads + " query heads cannot be shared evenly by " + heads.size()
                    + " KV heads (GQA needs queryHeads to be a positive multiple of kvHeads)");
        }
        for (int h = 0; h < heads.size(); h++) {
            if (heads.get(h).headDim() != headDim) {
                throw new KvArgumentException("KV head " + h + " has headDim " + heads.get(h).headDim()
                        + " but the layer has " + headDim);
            }
        }
        if (inputs == null) {
            inputs = LayerInputs.none();
        }
        WindowQueries window = inputs.window();
        if (window != null && window.queries().length / window.size() != (long) queryHeads * headDim) {
            throw new KvArgumentException("each window query token must hold queryHeads * headDim = "
                    + (long) queryHeads * headDim + " floats, got " + window.queries().length / window.size());
        }
        float[] wo = inputs.outputProjection();
        if (wo != null && wo.length % ((long) queryHeads * headDim) != 0) {
            throw new KvArgumentException("W_o must have queryHeads * headDim = " + (long) queryHeads * headDim
                    + " columns: its " + wo.length + " floats do not split into such rows");
        }
    }

    /**
     * Reads one layer of a sequence from block memory into a context: every KV head's keys and values as fp32 and
     * their positions ({@code 2 * rows * headDim * 4 + rows * 8} heap bytes per head). This is what
     * {@link Compressor} does for one layer at a time; only this layer is copied.
     *
     * @param inputs   the layer's observation-window queries and W_o (null or null parts when the policy needs none)
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @return a new context holding copies of the layer's rows
     */
    public static LayerContext read(io.kvslab.Sequence sequence, int layer, LayerInputs inputs) {
        return read(sequence, layer, inputs, true);
    }

    /**
     * Like {@link #read(io.kvslab.Sequence, int, LayerInputs)}; with {@code rows} false only
     * positions are read ({@link HeadSnapshot#positionsOnly}), for a policy that reads no rows.
     *
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @param inputs the layer's observation-window queries and W_o (null or null parts when the policy needs none)
     * @param rows whether to read keys and values ({@code false}: positions only)
     * @return a new context
     */
    public static LayerContext read(io.kvslab.Sequence sequence, int layer, LayerInputs inputs, boolean rows) {
        if (sequence == null) {
            throw new KvArgumentException("read needs a sequence (got null)");
        }
        io.kvslab.KvLayout layout = sequence.layout();
        if (layer < 0 || layer >= layout.layers()) {
            throw new KvArgumentException("layer must be in [0, " + layout.layers() + "), got " + layer);
        }
        List<HeadSnapshot> heads = new java.util.ArrayList<>(layout.kvHeads());
        for (int h = 0; h < layout.kvHeads(); h++) {
            heads.add(rows ? HeadSnapshot.read(sequence, layer, h) : HeadSnapshot.positionsOnly(sequence, layer, h));
        }
        return new LayerContext(layer, layout.queryHeads(), layout.headDim(), heads, inputs);
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

    /** The observation window, or null. */
    WindowQueries window() {
        return inputs.window();
    }

    /** W_o with its model dimension (its length over {@code queryHeads * headDim}), or null. */
    OutputProjection outputProjection() {
        float[] wo = inputs.outputProjection();
        return wo == null ? null : new OutputProjection(wo, (int) (wo.length / ((long) queryHeads * headDim)));
    }

    /** The observation window, or a KvArgumentException naming {@code who} needs it. */
    WindowQueries requireWindow(String who) {
        WindowQueries window = window();
        if (window == null) {
            throw new KvArgumentException(who + " needs the observation-window queries of layer " + layer
                    + " (LayerInputs.windowQueries is null)");
        }
        return window;
    }

    /** W_o, or a KvArgumentException naming {@code who} needs it. */
    OutputProjection requireOutputProjection(String who) {
        OutputProjection outputProjection = outputProjection();
        if (outputProjection == null) {
            throw new KvArgumentException(who + " needs W_o of layer " + layer + " (LayerInputs.outputProjection is null)");
        }
        return outputProjection;
    }
}
