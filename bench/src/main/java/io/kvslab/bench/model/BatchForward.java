package io.kvslab.bench.model;

/**
 * The forward pass for a serving loop: many sequences, each with its own {@link KvCache} and position, run one token
 * each per {@link #decode} call (projections as one matrix product over the batch, attention through a
 * {@link BatchAttention}: one batched kernel call per layer with {@link StoreBatchAttention}), and a new
 * sequence's prompt runs through {@link #prefill} in chunks, exactly as {@link Session#prefill} does. Holds scratch
 * for {@code max(maxBatch, chunk)} rows; not thread-safe (one scheduler thread owns it).
 */
public final class BatchForward {
    private final LlamaModel model;
    private final ForwardPass forward;
    private final int maxBatch;
    private final int chunk;

    /**
     * @param maxBatch largest number of sequences per {@link #decode}
     * @param chunk    prompt tokens per {@link #prefill} call at most (the {@link Session#DEFAULT_CHUNK} keeps results
     *                 identical to {@link Generator})
     */
    public BatchForward(LlamaModel model, MatMul matMul, int maxBatch, int chunk) {
        this(model, matMul, maxBatch, chunk, true);
    }

    /** @param simd false: scalar products only, even where {@link PanelMatMul} could run (tests compare the two) */
    BatchForward(LlamaModel model, MatMul matMul, int maxBatch, int chunk, boolean simd) {
        if (maxBatch <= 0 || chunk <= 0) {
            throw new IllegalArgumentException("batch and chunk sizes must be positive, got " + maxBatch + " and " + chunk);
        }
        this.model = model;
        this.maxBatch = maxBatch;
        this.chunk = chunk;
        this.forward = new ForwardPass(model, matMul, Math.max(maxBatch, chunk), simd);
        matMul.prepare();
    }

    public LlamaModel model() {
        return model;
    }

    /** Whether the matrix products run in SIMD lanes ({@link PanelMatMul}; the same sums as the scalar loop). */
    public boolean simd() {
        return forward.simd();
    }

    public int maxBatch() {
        return maxBatch;
    }

    /** Prompt tokens one {@link #prefill} call takes at most. */
    public int chunk() {
        return chunk;
    }

    /**
     * Runs {@code tokens[off .. off+n)} at positions {@code pos0, pos0+1, ...} into {@code cache}; when {@code logits}
     * is not null, writes the logits after the last of them.
     */
    public void prefill(int[] tokens, int off, int n, long pos0, KvCache cache, float[] logits) {
        if (n <= 0 || n > chunk) {
            throw new IllegalArgumentException("a prefill chunk of " + n + " tokens does not fit 1.." + chunk);
        }
        check(tokens, off, n, pos0 + n);
        forward.run(tokens, off, n, pos0, cache, logits, false, null);
    }

    /**
     * One token per sequence: row {@code t} feeds {@code tokens[t]} at {@code positions[t]} into {@code caches[t]},
     * attending row by row; writes {@code [n][vocab]} logits. A row whose cache failed (out of KV memory) gets its
     * exception in {@code failures[t]}; the other rows are computed as if it were not there.
     */
    public void decode(int[] tokens, long[] positions, KvCache[] caches, int n, float[] logits,
                       RuntimeException[] failures) {
        ModelConfig c = model.config();
        decode(tokens, positions, BatchAttention.perRow(caches, c.dim(), c.kvDim()), n, logits, failures);
    }

    /**
     * One token per sequence, attention through {@code attention} (once per layer for all {@code n} rows): row
     * {@code t} feeds {@code tokens[t]} at {@code positions[t]}; writes {@code [n][vocab]} logits; failures as in
     * {@link #decode(int[], long[], KvCache[], int, float[], RuntimeException[])}.
     */
    public void decode(int[] tokens, long[] positions, BatchAttention attention, int n, float[] logits,
                       RuntimeException[] failures) {
        if (n <= 0 || n > maxBatch) {
            throw new IllegalArgumentException("a batch of " + n + " sequences does not fit 1.." + maxBatch);
        }
        for (int t = 0; t < n; t++) {
            check(tokens, t, 1, positions[t] + 1);
        }
        forward.runRows(tokens, positions, attention, n, logits, failures);
    }

    private void check(int[] tokens, int off, int n, long end) {
        int vocab = model.config().vocabSize();
        for (int i = off; i < off + n; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException("token " + tokens[i] + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        if (end > model.config().contextLength()) {
            throw new ContextOverflowException("position " + (end - 1) + " is past " + model.name()
                    + "'s context length of " + model.config().contextLength() + " tokens");
        }
    }
}
