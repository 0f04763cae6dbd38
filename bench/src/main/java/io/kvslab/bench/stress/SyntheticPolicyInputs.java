package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.LayerInputs;

import java.util.SplittableRandom;

/**
 * What a policy needs besides the cached rows, for synthetic runs: observation-window queries from
 * {@link StructuredKv} (the queries the tokens at those positions would have had) and one random output projection
 * W_o ({@code [queryHeads * headDim][queryHeads * headDim]}, entries N(0, 1/width)) shared by all layers.
 */
public final class SyntheticPolicyInputs {
    private final KvLayout layout;
    private final StructuredKv gen;
    private final long salt;
    private float[] wo;
    private final long seed;

    public SyntheticPolicyInputs(KvLayout layout, StructuredKv gen, long salt, long seed) {
        this.layout = layout;
        this.gen = gen;
        this.salt = salt;
        this.seed = seed;
    }

    /** The queries of the {@code w} tokens at positions {@code end - w .. end - 1} (fewer if end < w). */
    public LayerInputs window(int layer, long end, int w) {
        int n = (int) Math.min(w, end);
        int width = layout.queryHeads() * layout.headDim();
        float[] q = new float[n * width];
        long[] pos = new long[n];
        float[] one = new float[width];
        for (int i = 0; i < n; i++) {
            pos[i] = end - n + i;
            gen.query(salt, layer, pos[i], one);
            System.arraycopy(one, 0, q, i * width, width);
        }
        return LayerInputs.window(q, pos);
    }

    /** Layer {@code layer}'s window ({@link #window}) and the shared W_o. */
    public LayerInputs layer(int layer, long end, int w) {
        return window(layer, end, w).withOutputProjection(outputProjection());
    }

    /**
     * What {@code policy} reads of layer {@code layer}: the window of {@code w} queries only if it reads a window, the
     * shared W_o only if it needs one (W_o is {@code width^2} floats: 64 MiB for Llama-3-8B, so it is not built for a
     * policy that does not read it).
     */
    public LayerInputs forPolicy(CompressionPolicy policy, int layer, long end, int w) {
        return (policy.windowQueries() > 0 ? window(layer, end, w) : LayerInputs.none())
                .withOutputProjection(policy.needsOutputProjection() ? outputProjection() : null);
    }

    /** The shared synthetic W_o (built on first use). */
    public float[] outputProjection() {
        if (wo == null) {
            int width = layout.queryHeads() * layout.headDim();
            float[] w = new float[Math.multiplyExact(width, width)];
            SplittableRandom rnd = new SplittableRandom(seed ^ 0x0B0E);
            float scale = (float) (1 / Math.sqrt(width));
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) rnd.nextGaussian() * scale;
            }
            wo = w;
        }
        return wo;
    }
}
