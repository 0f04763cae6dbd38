package io.kvslab.internal.ffm;

/**
 * The Gram matrices {@code G_h = (W_o^h)^T W_o^h} of every query head's slice of a layer's output projection, so
 * that {@code ||v W_o^h||_2^2 = v^T G_h v} costs {@code headDim^2} multiply-adds instead of {@code headDim x
 * modelDim}. Built by {@link PolicyKernels#gram}; plain heap arrays, immutable after construction.
 */
public final class OutputProjectionGram {
    private final float[] gram; // [queryHeads][headDim][headDim]
    private final int modelDim;
    private final int queryHeads;
    private final int headDim;

    private OutputProjectionGram(float[] gram, int modelDim, int queryHeads, int headDim) {
        this.gram = gram;
        this.modelDim = modelDim;
        this.queryHeads = queryHeads;
        this.headDim = headDim;
    }

    /** Wraps matrices computed elsewhere (the native kernel); not copied. */
    static OutputProjectionGram wrap(float[] gram, int modelDim, int queryHeads, int headDim) {
        return new OutputProjectionGram(gram, modelDim, queryHeads, headDim);
    }

    /**
     * Sums {@code W[k][h*d + i] * W[k][h*d + j]} over the model dimension in double (the upper triangle, mirrored),
     * then rounds to fp32. Arguments already validated by {@link PolicyKernels#gram}.
     */
    static OutputProjectionGram inJava(float[] wo, int modelDim, int queryHeads, int headDim) {
        int d = headDim;
        int stride = queryHeads * d;
        float[] g = new float[Math.multiplyExact(Math.multiplyExact(queryHeads, d), d)];
        double[] acc = new double[d * d];
        for (int h = 0; h < queryHeads; h++) {
            java.util.Arrays.fill(acc, 0.0);
            for (int k = 0; k < modelDim; k++) {
                int base = k * stride + h * d;
                for (int i = 0; i < d; i++) {
                    double wi = wo[base + i];
                    int row = i * d;
                    for (int j = i; j < d; j++) {
                        acc[row + j] += wi * wo[base + j];
                    }
                }
            }
            int off = h * d * d;
            for (int i = 0; i < d; i++) {
                for (int j = i; j < d; j++) {
                    float v = (float) acc[i * d + j];
                    g[off + i * d + j] = v;
                    g[off + j * d + i] = v;
                }
            }
        }
        return new OutputProjectionGram(g, modelDim, queryHeads, headDim);
    }

    /** Rows of the W_o this was computed from. */
    public int modelDim() {
        return modelDim;
    }

    /** Query heads (one Gram matrix each). */
    public int queryHeads() {
        return queryHeads;
    }

    /** Elements per head: each Gram matrix is headDim x headDim. */
    public int headDim() {
        return headDim;
    }

    /** The matrices, {@code [queryHeads][headDim][headDim]} row-major; not copied, do not modify. */
    float[] matrices() {
        return gram;
    }
}
