package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

/**
 * The last {@code capacity} queries of every layer of one sequence, kept so that a policy that needs an observation
 * window can run during decoding (kvpress's DecodingPress keeps a hidden-state buffer for the same reason). The
 * runner pushes each token's RoPE-rotated query, [queryHeads][headDim], per layer.
 */
public final class RecentQueries {
    /** Most floats of one layer's ring (capacity x queryHeads x headDim): one Java array. */
    public static final int MAX_RING_FLOATS = Integer.MAX_VALUE - 8;

    private final int layers;
    private final int width;
    private final int capacity;
    private final float[][] ring;
    private final long[][] positions;
    private final int[] count;
    private final int[] next;

    /**
     * An empty ring of the last {@code capacity} queries of every layer.
     *
     * @param layers     layers of the model
     * @param queryHeads query heads per token
     * @param headDim    elements per head
     * @param capacity   queries kept per layer (the policy's {@link CompressionPolicy#windowQueries()})
     * @throws KvArgumentException if a count is below 1, above a {@link KvLayout}'s limit, or one layer's ring
     *                             would exceed {@value #MAX_RING_FLOATS} floats
     */
    public RecentQueries(int layers, int queryHeads, int headDim, int capacity) {
        if (layers < 1 || queryHeads < 1 || headDim < 1 || capacity < 1) {
            throw new KvArgumentException("layers, queryHeads, headDim and capacity must be >= 1; got " + layers + ", "
                    + queryHeads + ", " + headDim + ", " + capacity);
        }
        // the same bounds as a store's layout, and one layer's ring in one Java array: checked before allocating
        if (layers > KvLayout.MAX_LAYERS || queryHeads > KvLayout.MAX_HEADS || headDim > KvLayout.MAX_DIMENSION) {
            throw new KvArgumentException("layers <= " + KvLayout.MAX_LAYERS + ", queryHeads <= " + KvLayout.MAX_HEADS
                    + " and headDim <= " + KvLayout.MAX_DIMENSION + " are allowed (as in a KvLayout); got " + layers
                    + ", " + queryHeads + ", " + headDim);
        }
        long ringFloats = (long) capacity * queryHeads * headDim;
        if ((long) queryHeads * headDim > KvLayout.MAX_TOKEN_FLOATS || ringFloats > MAX_RING_FLOATS) {
            throw new KvArgumentException("capacity x queryHeads x headDim = " + capacity + " x " + queryHeads + " x "
                    + headDim + " floats per layer; at most " + MAX_RING_FLOATS + " are allowed");
        }
        this.layers = layers;
        this.width = queryHeads * headDim;
        this.capacity = capacity;
        this.ring = new float[layers][Math.multiplyExact(capacity, width)];
        this.positions = new long[layers][capacity];
        this.count = new int[layers];
        this.next = new int[layers];
    }

    /**
     * Records the query of the token at {@code position} in {@code layer}; positions must increase.
     *
     * @param layer layer index, in {@code [0, layers)}
     * @param query the token's queries, {@code queryHeads * headDim} floats, RoPE applied; copied
     * @param position the token's absolute position, above the last one pushed for this layer
     */
    public void push(int layer, float[] query, long position) {
        if (layer < 0 || layer >= layers) {
            throw new KvArgumentException("layer must be in [0, " + layers + "), got " + layer);
        }
        if (query == null || query.length != width) {
            throw new KvArgumentException("a query must hold queryHeads * headDim = " + width + " floats, got "
                    + (query == null ? "null" : query.length));
        }
        if (count[layer] > 0) {
            long last = positions[layer][(next[layer] + capacity - 1) % capacity];
            if (position <= last) {
                throw new KvArgumentException("query positions must increase; got " + position + " after " + last);
            }
        }
        int slot = next[layer];
        System.arraycopy(query, 0, ring[layer], slot * width, width);
        positions[layer][slot] = position;
        next[layer] = (slot + 1) % capacity;
        count[layer] = Math.min(capacity, count[layer] + 1);
    }

    /**
     * Queries held for {@code layer}, oldest first; null if none was pushed.
     *
     * @param layer layer index, in {@code [0, layers)}
     * @return the window (as inputs holding only it), or {@code null}
     */
    public LayerInputs window(int layer) {
        if (layer < 0 || layer >= layers) {
            throw new KvArgumentException("layer must be in [0, " + layers + "), got " + layer);
        }
        int n = count[layer];
        if (n == 0) {
            return null;
        }
        float[] q = new float[n * width];
        long[] p = new long[n];
        int first = (next[layer] - n + capacity) % capacity;
        for (int i = 0; i < n; i++) {
            int slot = (first + i) % capacity;
            System.arraycopy(ring[layer], slot * width, q, i * width, width);
            p[i] = positions[layer][slot];
        }
        return LayerInputs.window(q, p);
    }

    /**
     * Windows of every layer, in layer order.
     *
     * @return one entry per layer (null for a layer with no queries)
     */
    public java.util.List<LayerInputs> windows() {
        java.util.List<LayerInputs> out = new java.util.ArrayList<>(layers);
        for (int l = 0; l < layers; l++) {
            out.add(window(l));
        }
        return out;
    }

    /**
     * These windows as a policy's inputs (each layer's window is built when the compressor asks for it).
     *
     * @return layer to its inputs
     */
    public java.util.function.IntFunction<LayerInputs> inputs() {
        return this::window;
    }

    /**
     * These windows with per-layer W_o (null entries or a null list: none).
     *
     * @param outputProjections one W_o per layer, or {@code null}
     * @return layer to its inputs
     */
    public java.util.function.IntFunction<LayerInputs> inputs(java.util.List<float[]> outputProjections) {
        return l -> {
            LayerInputs window = window(l);
            float[] wo = outputProjections == null || l >= outputProjections.size() ? null : outputProjections.get(l);
            return window == null ? new LayerInputs(null, null, wo) : window.withOutputProjection(wo);
        };
    }
}
