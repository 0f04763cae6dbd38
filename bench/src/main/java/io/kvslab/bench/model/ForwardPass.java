package io.kvslab.bench.model;

/**
 * llama2.c's {@code forward} for a chunk of consecutive tokens: embedding, then per layer RMSNorm, Q/K/V projections,
 * RoPE, attention (delegated to a {@link KvCache}), output projection and residual, RMSNorm, SwiGLU feed-forward and
 * residual; then the final RMSNorm and the classifier. Per token the arithmetic is exactly llama2.c's; a chunk only
 * batches the matrix products. Holds scratch buffers for up to {@code maxChunk} tokens; not thread-safe.
 */
final class ForwardPass {
    private final ModelConfig c;
    private final ModelWeights w;
    private final MatMul mm;
    private final int maxChunk;
    private final float[] x;
    private final float[] xb;
    private final float[] xb2;
    private final float[] q;
    private final float[] k;
    private final float[] v;
    private final float[] att;
    private final float[] hb;
    private final float[] hb2;
    private final long[] positions;
    /** The weights as {@link PanelMatMul} panels when SIMD products are on, else null. */
    private final WeightPanels panels;
    /** RoPE's cosines and sines per row, {@code [maxChunk][headDim]}: computed once per step, used by every layer. */
    private final float[] ropeCos;
    private final float[] ropeSin;

    ForwardPass(LlamaModel model, MatMul mm, int maxChunk) {
        this(model, mm, maxChunk, true);
    }

    /** @param simd false keeps the scalar products even where {@link PanelMatMul} could run (the reference runner) */
    ForwardPass(LlamaModel model, MatMul mm, int maxChunk, boolean simd) {
        if (maxChunk <= 0) {
            throw new IllegalArgumentException("chunk size must be positive, got " + maxChunk);
        }
        this.c = model.config();
        String tooWide = c.rowsProblem(maxChunk);
        if (tooWide != null) {
            // every buffer below is maxChunk times a width of at most max(dim, hidden_dim, vocab_size): in int range
            throw new IllegalArgumentException(tooWide);
        }
        this.w = model.weights();
        this.mm = mm;
        this.maxChunk = maxChunk;
        int dim = c.dim();
        this.x = new float[maxChunk * dim];
        this.xb = new float[maxChunk * dim];
        this.xb2 = new float[maxChunk * dim];
        this.q = new float[maxChunk * dim];
        this.k = new float[maxChunk * c.kvDim()];
        this.v = new float[maxChunk * c.kvDim()];
        this.att = new float[maxChunk * dim];
        this.hb = new float[maxChunk * c.hiddenDim()];
        this.hb2 = new float[maxChunk * c.hiddenDim()];
        this.positions = new long[maxChunk];
        // SIMD lanes across output rows keep every sum in llama2.c's order: only the Java product may use them
        this.panels = simd && mm == MatMul.JAVA && VectorMatMul.available() ? model.panels() : null;
        this.ropeCos = new float[maxChunk * c.headDim()];
        this.ropeSin = new float[maxChunk * c.headDim()];
    }

    /** Whether the products run in SIMD lanes ({@link PanelMatMul}). */
    boolean simd() {
        return panels != null;
    }

    int maxChunk() {
        return maxChunk;
    }

    /**
     * Runs tokens[off .. off+n) at positions pos0, pos0+1, ... through the model, appending their keys and values to
     * {@code cache}. Writes logits: for every token ({@code [n][vocab]}) when {@code allLogits}, else only for the last.
     * {@code logits} may be null to skip the classifier altogether.
     */
    void run(int[] tokens, int off, int n, long pos0, KvCache cache, float[] logits, boolean allLogits,
             AttentionObserver observer) {
        int dim = c.dim();
        for (int t = 0; t < n; t++) {
            System.arraycopy(w.tokenEmbedding, tokens[off + t] * dim, x, t * dim, dim);
            positions[t] = pos0 + t;
        }
        layers(n, positions, l -> {
            cache.attend(l, q, k, v, positions, n, att);
            if (observer != null) {
                observer.onAttention(l, positions, n, q, att);
            }
        });
        if (logits == null) {
            return;
        }
        classify(n, logits, allLogits);
    }

    /**
     * One token for each of {@code n} independent sequences: row {@code t} is token {@code tokens[t]} at its own
     * position {@code positions[t]}, appended to and attending over its own sequence through {@code attention}
     * (called once per layer for all rows). The projections run as one product over the n rows; every row's
     * arithmetic is that of {@link #run} for one token, so a row's result does not depend on the other rows (with
     * a {@link MatMul} whose rows are independent, like {@link MatMul#JAVA}, and an attention whose rows are, like
     * the batched kernel). Writes {@code [n][vocab]} logits.
     *
     * <p>A row whose attention throws (the store is out of memory) is recorded in {@code failures[t]}, its attention
     * output is zero from then on and its logits are meaningless; the other rows are unaffected.
     */
    void runRows(int[] tokens, long[] rowPositions, BatchAttention attention, int n, float[] logits,
                 RuntimeException[] failures) {
        if (n <= 0 || n > maxChunk) {
            throw new IllegalArgumentException("a batch of " + n + " rows does not fit 1.." + maxChunk);
        }
        int dim = c.dim();
        for (int t = 0; t < n; t++) {
            System.arraycopy(w.tokenEmbedding, tokens[t] * dim, x, t * dim, dim);
        }
        layers(n, rowPositions, l -> attention.attend(l, q, k, v, rowPositions, n, att, failures));
        classify(n, logits, true);
    }

    /** Attention of one layer over q, k, v (rows already roped) into att: the only step {@link #run} and
     *  {@link #runRows} do differently. */
    private interface LayerAttention {
        void layer(int l);
    }

    /** Every layer for the n rows in x: projections as one product over the rows, RoPE at each row's position. */
    private void layers(int n, long[] rowPositions, LayerAttention attend) {
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        int hs = c.headDim();
        for (int t = 0; t < n; t++) {
            LlamaMath.ropeAngles(ropeCos, ropeSin, t * hs, hs, c.ropeTheta(), rowPositions[t]);
        }
        WeightPanels p = panels;
        for (int l = 0; l < c.layers(); l++) {
            for (int t = 0; t < n; t++) {
                LlamaMath.rmsnorm(xb, t * dim, x, t * dim, w.rmsAtt[l], dim, c.normEps());
            }
            product(q, xb, w.wq[l], p == null ? null : p.wq()[l], n, dim, dim);
            product(k, xb, w.wk[l], p == null ? null : p.wk()[l], n, dim, kvDim);
            product(v, xb, w.wv[l], p == null ? null : p.wv()[l], n, dim, kvDim);
            for (int t = 0; t < n; t++) {
                LlamaMath.rope(q, t * dim, k, t * kvDim, dim, kvDim, hs, ropeCos, ropeSin, t * hs);
            }
            attend.layer(l);
            product(xb2, att, w.wo[l], p == null ? null : p.wo()[l], n, dim, dim);
            for (int i = 0; i < n * dim; i++) {
                x[i] += xb2[i];
            }
            for (int t = 0; t < n; t++) {
                LlamaMath.rmsnorm(xb, t * dim, x, t * dim, w.rmsFfn[l], dim, c.normEps());
            }
            product(hb, xb, w.w1[l], p == null ? null : p.w1()[l], n, dim, hidden);
            product(hb2, xb, w.w3[l], p == null ? null : p.w3()[l], n, dim, hidden);
            LlamaMath.swiglu(hb, hb2, n * hidden);
            product(xb, hb, w.w2[l], p == null ? null : p.w2()[l], n, hidden, dim);
            for (int i = 0; i < n * dim; i++) {
                x[i] += xb[i];
            }
        }
    }

    /** out = x W^T for n rows: through the panels when there are, else the configured {@link MatMul}. */
    private void product(float[] out, float[] x, float[] w, float[] panel, int n, int cols, int rows) {
        if (panel != null) {
            PanelMatMul.multiply(out, x, panel, n, cols, rows);
        } else {
            mm.multiply(out, x, w, n, cols, rows);
        }
    }

    private void classify(int n, float[] logits, boolean allLogits) {
        int dim = c.dim();
        if (allLogits) {
            for (int t = 0; t < n; t++) {
                LlamaMath.rmsnorm(x, t * dim, x, t * dim, w.rmsFinal, dim, c.normEps());
            }
            product(logits, x, w.classifier, panels == null ? null : panels.classifier(), n, dim, c.vocabSize());
        } else {
            int last = (n - 1) * dim;
            LlamaMath.rmsnorm(x, last, x, last, w.rmsFinal, dim, c.normEps());
            System.arraycopy(x, last, xb, 0, dim);
            product(logits, xb, w.classifier, panels == null ? null : panels.classifier(), 1, dim, c.vocabSize());
        }
    }
}
