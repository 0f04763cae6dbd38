package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * SnapKV's observation-window score (spec 1.2), the base signal of SnapKV, Ada-KV, PyramidKV and CriticalKV.
 *
 * <p>For each KV head: the last {@code window} queries of every query head of its GQA group attend causally over
 * <em>all</em> the head's rows (softmax in fp32 over every visible key, the window's own keys included, computed by
 * the native sgemm kernel); the probabilities are averaged over the window queries. The rows before the window (the
 * candidates) are then smoothed by a 1-D pooling over neighbouring rows and reduced over the query heads of the
 * group, in the configured order (max-pooling and the group mean do not commute). Rows inside the window get their
 * unpooled group-reduced attention; they are protected by {@link Protection#observationWindow()} in every SnapKV
 * policy, so that score is never compared.
 *
 * <p>WindowPooling edges: {@link WindowPooling#AVG} pads with zeros and always divides by the kernel size (PyTorch
 * {@code avg_pool1d}, count_include_pad); {@link WindowPooling#MAX} ignores out-of-range neighbours ({@code max_pool1d}
 * pads with -inf). WindowPooling runs over neighbouring rows, which are neighbouring positions after prefill.
 *
 * @param window      observation-window size w: how many of the last queries score the rows
 * @param pooling     pooling kind
 * @param kernel      pooling kernel size (odd, >= 1; 1 = no smoothing)
 * @param order       whether pooling runs before or after the reduction over the GQA group
 * @param groupReduce how the G query heads of a KV head are combined
 */
record WindowAttentionScorer(int window, WindowPooling pooling, int kernel, PoolOrder order,
                                    GroupReduce groupReduce) implements Scorer {
    /** Order of pooling and GQA reduction. */
    public enum PoolOrder { POOL_THEN_GROUP, GROUP_THEN_POOL }

    /** Reduction over the query heads that share a KV head. */
    public enum GroupReduce { MEAN, MAX }

    public WindowAttentionScorer {
        if (window < 1) {
            throw new KvArgumentException("the observation window must hold >= 1 query, got " + window);
        }
        if (kernel < 1 || kernel % 2 == 0) {
            throw new KvArgumentException("the pooling kernel must be odd and >= 1, got " + kernel);
        }
        if (pooling == null || order == null || groupReduce == null) {
            throw new KvArgumentException("pooling, order and groupReduce are required (got null)");
        }
    }

    /**
     * The SnapKV authors' configuration as used by their Ada-KV code (FFY0/AdaKV): window 32, max-pool 7, mean over
     * the GQA group, group reduction before pooling. The default.
     */
    public static WindowAttentionScorer authors() {
        return new WindowAttentionScorer(32, WindowPooling.MAX, 7, PoolOrder.GROUP_THEN_POOL, GroupReduce.MEAN);
    }

    /** kvpress's SnapKVPress: window 64, avg-pool 5, pooling before the group mean. */
    public static WindowAttentionScorer kvpress() {
        return new WindowAttentionScorer(64, WindowPooling.AVG, 5, PoolOrder.POOL_THEN_GROUP, GroupReduce.MEAN);
    }

    /** The same configuration with another window size. */
    public WindowAttentionScorer withWindow(int w) {
        return new WindowAttentionScorer(w, pooling, kernel, order, groupReduce);
    }

    @Override
    public int windowQueries() {
        return window;
    }

    @Override
    public float[][] score(LayerContext layer) {
        try (PolicyWorkspace workspace = PolicyWorkspace.create()) {
            return score(layer, workspace);
        }
    }

    /** The scores on {@code workspace}'s kernels (what a policy runs, on its compressor's workspace). */
    float[][] score(LayerContext layer, PolicyWorkspace workspace) {
        WindowQueries w = layer.requireWindow("SnapKV window scoring").last(window);
        int g = layer.groupSize();
        float[][] scores = new float[layer.kvHeads()][];
        for (int h = 0; h < layer.kvHeads(); h++) {
            HeadSnapshot head = layer.head(h);
            int n = head.length();
            float[] mean = new float[g * n];
            workspace.kernels().windowAttention(w.queries(), w.size(), layer.queryHeads(), layer.headDim(), h * g, g,
                    head.keys(), n, head.positions(), w.positions(), mean, null);
            scores[h] = fromGroupAttention(mean, g, n, candidates(head, w.start()));
        }
        return scores;
    }

    /** Rows before the window: a prefix because positions ascend. */
    static int candidates(HeadSnapshot head, long windowStart) {
        long[] pos = head.positions();
        int c = 0;
        while (c < pos.length && pos[c] < windowStart) {
            c++;
        }
        return c;
    }

    /**
     * Turns the per-query-head mean window attention {@code [g][n]} into per-row scores: pooling and group reduction
     * over the first {@code c} rows in the configured order, the rest group-reduced only.
     */
    float[] fromGroupAttention(float[] mean, int g, int n, int c) {
        float[] s = new float[n];
        if (order == PoolOrder.POOL_THEN_GROUP) {
            float[][] pooled = new float[g][];
            for (int q = 0; q < g; q++) {
                float[] a = new float[c];
                System.arraycopy(mean, q * n, a, 0, c);
                pooled[q] = pool(a);
            }
            for (int r = 0; r < c; r++) {
                s[r] = reduce(pooled, r);
            }
        } else {
            float[] a = new float[c];
            for (int r = 0; r < c; r++) {
                a[r] = reduceColumn(mean, g, n, r);
            }
            float[] p = pool(a);
            System.arraycopy(p, 0, s, 0, c);
        }
        for (int r = c; r < n; r++) {
            s[r] = reduceColumn(mean, g, n, r);
        }
        return s;
    }

    float[] pool(float[] a) {
        int half = kernel / 2;
        float[] out = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            int lo = Math.max(0, i - half);
            int hi = Math.min(a.length - 1, i + half);
            if (pooling == WindowPooling.AVG) {
                double sum = 0;
                for (int j = lo; j <= hi; j++) {
                    sum += a[j];
                }
                out[i] = (float) (sum / kernel); // zero padding is counted
            } else {
                float m = Float.NEGATIVE_INFINITY;
                for (int j = lo; j <= hi; j++) {
                    m = Math.max(m, a[j]);
                }
                out[i] = m;
            }
        }
        return out;
    }

    private float reduce(float[][] perHead, int r) {
        if (groupReduce == GroupReduce.MAX) {
            float m = Float.NEGATIVE_INFINITY;
            for (float[] p : perHead) {
                m = Math.max(m, p[r]);
            }
            return m;
        }
        double sum = 0;
        for (float[] p : perHead) {
            sum += p[r];
        }
        return (float) (sum / perHead.length);
    }

    private float reduceColumn(float[] mean, int g, int n, int r) {
        if (groupReduce == GroupReduce.MAX) {
            float m = Float.NEGATIVE_INFINITY;
            for (int q = 0; q < g; q++) {
                m = Math.max(m, mean[q * n + r]);
            }
            return m;
        }
        double sum = 0;
        for (int q = 0; q < g; q++) {
            sum += mean[q * n + r];
        }
        return (float) (sum / g);
    }
}
