package io.kvslab.bench.model;

/**
 * The independent reference: keys and values in plain Java arrays laid out like llama2.c's {@code key_cache}
 * ({@code [layer][token][kvDim]}), attention by {@link ReferenceAttention} (llama2.c's loops: dot products in index
 * order, score divided by {@code sqrtf(head_size)}, llama2.c's softmax, weighted sum of values in token order). A run on this
 * cache with {@link MatMul#JAVA} reproduces llama2.c's logits bit for bit.
 */
public final class JavaKvCache implements KvCache {
    private final ModelConfig config;
    private final float[][] keys;
    private final float[][] values;
    private final long[][] positions;
    private final int[] length;
    private float[] att;

    /** A cache for up to {@code config.contextLength()} tokens (storage grows as tokens arrive). */
    public JavaKvCache(ModelConfig config) {
        this.config = config;
        int layers = config.layers();
        this.keys = new float[layers][0];
        this.values = new float[layers][0];
        this.positions = new long[layers][0];
        this.length = new int[layers];
        this.att = new float[64];
    }

    /** Tokens held for {@code layer}. */
    public int length(int layer) {
        return length[layer];
    }

    @Override
    public void attend(int layer, float[] q, float[] k, float[] v, long[] pos, int n, float[] out) {
        int kvDim = config.kvDim();
        int dim = config.dim();
        int hs = config.headDim();
        int group = config.groupSize();
        int base = length[layer];
        int total = base + n;
        if (total > config.contextLength()) {
            throw new ContextOverflowException("layer " + layer + " would hold " + total
                    + " tokens; the model's context length is " + config.contextLength());
        }
        ensure(layer, total);
        System.arraycopy(k, 0, keys[layer], base * kvDim, n * kvDim);
        System.arraycopy(v, 0, values[layer], base * kvDim, n * kvDim);
        System.arraycopy(pos, 0, positions[layer], base, n);
        length[layer] = total;
        if (att.length < total) {
            att = new float[Math.max(total, att.length * 2)];
        }
        float[] kc = keys[layer];
        float[] vc = values[layer];
        for (int t = 0; t < n; t++) {
            int visible = base + t + 1;
            for (int h = 0; h < config.heads(); h++) {
                int qo = t * dim + h * hs;
                ReferenceAttention.head(q, qo, kc, vc, (h / group) * hs, kvDim, visible, hs, att, out, qo);
            }
        }
    }

    private void ensure(int layer, int tokens) {
        int kvDim = config.kvDim();
        if (keys[layer].length < (long) tokens * kvDim) {
            int cap = Math.min(config.contextLength(), Math.max(tokens, positions[layer].length * 2));
            keys[layer] = java.util.Arrays.copyOf(keys[layer], cap * kvDim);
            values[layer] = java.util.Arrays.copyOf(values[layer], cap * kvDim);
            positions[layer] = java.util.Arrays.copyOf(positions[layer], cap);
        }
    }

    @Override
    public void close() {
        // heap only: nothing to release
    }
}
