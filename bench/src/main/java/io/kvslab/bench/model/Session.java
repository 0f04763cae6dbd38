package io.kvslab.bench.model;

/**
 * One inference stream over a model: the tokens seen so far live in a {@link KvCache}; {@link #prefill} feeds a run
 * of tokens in chunks, {@link #step} one token at a time. Between calls the caller may work on the cache (for
 * example compress a {@link StoreKvCache}'s sequence after the prompt); positions keep counting the tokens fed, so
 * RoPE stays absolute whatever rows were evicted.
 *
 * <p>Not thread-safe. Closing the session closes its cache.
 */
public final class Session implements AutoCloseable {
    /** Tokens per prefill chunk unless told otherwise. */
    public static final int DEFAULT_CHUNK = 64;

    private final LlamaModel model;
    private final KvCache cache;
    private final ForwardPass forward;
    private final float[] lastLogits;
    private long position;
    private AttentionObserver observer;

    /**
     * @param cache where keys and values go; the session closes it
     * @param chunk largest number of tokens run through the model at once by {@link #prefill}
     */
    public Session(LlamaModel model, KvCache cache, MatMul matMul, int chunk) {
        this(model, cache, matMul, chunk, true);
    }

    /** @param simd false: scalar products only (see {@link ForwardPass}) */
    Session(LlamaModel model, KvCache cache, MatMul matMul, int chunk, boolean simd) {
        if (cache instanceof StoreKvCache store) {
            store.requireMatches(model.config());
        }
        this.model = model;
        this.cache = cache;
        this.forward = new ForwardPass(model, matMul, chunk, simd);
        matMul.prepare();
        this.lastLogits = new float[model.config().vocabSize()];
    }

    /**
     * The independent reference: llama2.c's arithmetic throughout (scalar Java matmul, never the SIMD panels,
     * {@link JavaKvCache}).
     */
    public static Session reference(LlamaModel model) {
        return new Session(model, new JavaKvCache(model.config()), MatMul.JAVA, DEFAULT_CHUNK, false);
    }

    public LlamaModel model() {
        return model;
    }

    public KvCache cache() {
        return cache;
    }

    /** Tokens fed so far = the position the next token gets. */
    public long position() {
        return position;
    }

    /** Sees every later chunk's queries and attention outputs; null to stop. */
    public void observer(AttentionObserver observer) {
        this.observer = observer;
    }

    /** Feeds tokens in chunks; returns the logits after the last one (a fresh array). */
    public float[] prefill(int[] tokens) {
        check(tokens);
        if (tokens.length == 0) {
            throw new IllegalArgumentException("prefill needs at least one token");
        }
        for (int off = 0; off < tokens.length; off += forward.maxChunk()) {
            int n = Math.min(forward.maxChunk(), tokens.length - off);
            boolean last = off + n == tokens.length;
            forward.run(tokens, off, n, position, cache, last ? lastLogits : null, false, observer);
            position += n;
        }
        return lastLogits.clone();
    }

    /** Feeds tokens in chunks; returns the logits after every one of them, {@code [tokens.length][vocab]}. */
    public float[][] prefillAll(int[] tokens) {
        check(tokens);
        int vocab = model.config().vocabSize();
        float[][] out = new float[tokens.length][];
        float[] chunkLogits = new float[Math.toIntExact((long) forward.maxChunk() * vocab)];   // fits: ForwardPass checked
        for (int off = 0; off < tokens.length; off += forward.maxChunk()) {
            int n = Math.min(forward.maxChunk(), tokens.length - off);
            forward.run(tokens, off, n, position, cache, chunkLogits, true, observer);
            position += n;
            for (int t = 0; t < n; t++) {
                out[off + t] = java.util.Arrays.copyOfRange(chunkLogits, t * vocab, (t + 1) * vocab);
            }
        }
        return out;
    }

    /** Feeds one token; returns the logits for the next (a fresh array). */
    public float[] step(int token) {
        int[] one = {token};
        check(one);
        forward.run(one, 0, 1, position, cache, lastLogits, false, observer);
        position++;
        return lastLogits.clone();
    }

    private void check(int[] tokens) {
        int vocab = model.config().vocabSize();
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab) {
                throw new IllegalArgumentException("token " + tokens[i] + " at index " + i
                        + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        int context = model.config().contextLength();
        if (position + tokens.length > context) {
            throw new ContextOverflowException(tokens.length + " more tokens after " + position + " would exceed "
                    + model.name() + "'s context length of " + context + " tokens");
        }
    }

    @Override
    public void close() {
        cache.close();
    }
}
