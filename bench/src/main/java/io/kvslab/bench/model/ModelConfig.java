package io.kvslab.bench.model;

/**
 * Geometry and numerics of a Llama-architecture model.
 *
 * @param dim           model (residual stream) width
 * @param hiddenDim     width of the SwiGLU feed-forward layer
 * @param layers        number of transformer blocks
 * @param heads         query heads per layer
 * @param kvHeads       key/value heads per layer (GQA: {@code heads} is a multiple of it)
 * @param vocabSize     tokens in the vocabulary (rows of the embedding and of the classifier)
 * @param contextLength largest number of positions the model accepts
 * @param ropeTheta     RoPE base (10000 for llama2.c models)
 * @param normEps       RMSNorm epsilon (1e-5 for llama2.c models)
 */
public record ModelConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize,
                          int contextLength, float ropeTheta, float normEps) {

    /** llama2.c's fixed numerics: RoPE theta 10000, RMSNorm epsilon 1e-5. */
    public static final float DEFAULT_ROPE_THETA = 10000.0f;
    public static final float DEFAULT_NORM_EPS = 1e-5f;
    /**
     * Largest context length a model file may declare (GGUF's llama.context_length, llama2.c's seq_len): 16M
     * positions, far beyond any model this runner serves, and small enough that per-position tables stay bounded.
     */
    public static final int MAX_CONTEXT = 1 << 24;

    /**
     * Checks the geometry; returns a message saying what is wrong, or null when it is consistent.
     * Loaders turn a non-null answer into a {@link ModelFormatException} naming their file.
     */
    static String problem(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocabSize, int contextLength) {
        if (dim <= 0 || hiddenDim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocabSize <= 0 || contextLength <= 0) {
            return "every dimension must be positive, got dim=" + dim + " hidden_dim=" + hiddenDim + " n_layers=" + layers
                    + " n_heads=" + heads + " n_kv_heads=" + kvHeads + " vocab_size=" + vocabSize + " seq_len=" + contextLength;
        }
        if (dim % heads != 0) {
            return "dim " + dim + " must be a multiple of n_heads " + heads;
        }
        if (heads % kvHeads != 0) {
            return "n_heads " + heads + " must be a multiple of n_kv_heads " + kvHeads;
        }
        if ((dim / heads) % 2 != 0) {
            return "head size " + dim / heads + " must be even (RoPE rotates pairs)";
        }
        return null;
    }

    public ModelConfig {
        String p = problem(dim, hiddenDim, layers, heads, kvHeads, vocabSize, contextLength);
        if (p != null) {
            throw new IllegalArgumentException(p);
        }
        if (!(ropeTheta > 0) || !(normEps > 0)) {
            throw new IllegalArgumentException("ropeTheta and normEps must be positive, got " + ropeTheta + ", " + normEps);
        }
    }

    /** Most elements of a Java array this runner allocates (the VMs refuse a few under Integer.MAX_VALUE). */
    public static final int MAX_ARRAY_ELEMENTS = Integer.MAX_VALUE - 8;

    /** The widest row of scratch a forward pass keeps per token: the largest of dim, hidden_dim and vocab_size. */
    private String widestRow() {
        return hiddenDim >= dim && hiddenDim >= vocabSize ? "hidden_dim " + hiddenDim
                : vocabSize >= dim ? "vocab_size " + vocabSize : "dim " + dim;
    }

    private int widest() {
        return Math.max(dim, Math.max(hiddenDim, vocabSize));
    }

    /** The most tokens a forward pass (a prefill chunk, a decode batch) can run at once: its scratch must fit arrays. */
    public int maxRows() {
        return MAX_ARRAY_ELEMENTS / widest();
    }

    /**
     * Null if a forward pass can hold scratch for {@code rows} tokens at once ({@code rows} times each of dim,
     * hidden_dim and vocab_size floats in one Java array), else why not, naming the model's widest dimension and the
     * most rows that fit.
     */
    public String rowsProblem(long rows) {
        long floats = rows * widest();   // rows < 2^32, widest < 2^31: no overflow
        if (rows <= maxRows()) {
            return null;
        }
        return rows + " tokens at once of a model with " + widestRow() + " need buffers of " + floats
                + " floats, more than a Java array holds (" + MAX_ARRAY_ELEMENTS + "); at most " + maxRows()
                + " for this model";
    }

    /** Elements per attention head. */
    public int headDim() {
        return dim / heads;
    }

    /** Width of the key (and value) projection: kvHeads * headDim. */
    public int kvDim() {
        return kvHeads * headDim();
    }

    /** Query heads per key/value head; query head h reads kv head {@code h / groupSize()}. */
    public int groupSize() {
        return heads / kvHeads;
    }
}
