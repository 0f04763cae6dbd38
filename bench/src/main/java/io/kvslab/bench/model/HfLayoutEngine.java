package io.kvslab.bench.model;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.KvTensor;
import io.kvslab.Sequence;

import java.lang.foreign.MemorySegment;

/**
 * The embedding example of docs/embedding.md: an inference engine with its own forward pass and its own tensors
 * that keeps its KV cache in KVSlab through the exported API only. K and V come out of the projections in the
 * Hugging Face layout {@code [tokens, kvHeads, headDim]} (post-RoPE, f32) and go into the store as
 * {@link KvTensor} views of the engine's buffers (no staging copy); queries and attention outputs are handed to
 * {@link Attention} as segments over the engine's buffers.
 *
 * <p>The arithmetic around the cache is llama2.c's ({@link LlamaMath}), so greedy generation reproduces the
 * llama2.c goldens token for token (HfLayoutEngineTest). Not thread-safe: one engine per sequence and thread.
 */
public final class HfLayoutEngine implements AutoCloseable {
    private final ModelConfig c;
    private final ModelWeights w;
    private final KvStore store;
    private final Sequence seq;
    private final Attention attention;
    private final int maxChunk;
    // the engine's own activations, sized for maxChunk tokens
    private final float[] x, xb, xb2, q, k, v, att, hb, hb2, logits;
    private final long[] positions;
    private long position;

    public HfLayoutEngine(LlamaModel model, DType kvType, int maxChunk) {
        this.c = model.config();
        this.w = model.weights();
        this.maxChunk = maxChunk;
        int dim = c.dim();
        x = new float[maxChunk * dim];
        xb = new float[maxChunk * dim];
        xb2 = new float[maxChunk * dim];
        q = new float[maxChunk * dim];
        k = new float[maxChunk * c.kvDim()];
        v = new float[maxChunk * c.kvDim()];
        att = new float[maxChunk * dim];
        hb = new float[maxChunk * c.hiddenDim()];
        hb2 = new float[maxChunk * c.hiddenDim()];
        logits = new float[c.vocabSize()];
        positions = new long[maxChunk];
        store = KvStore.open(KvLayout.of(c.layers(), c.heads(), c.kvHeads(), c.headDim(), kvType));
        seq = store.newSequence();
        attention = Attention.create(1);
    }

    /** Tokens processed so far (the next token's position). */
    public long position() {
        return position;
    }

    /** Runs {@code tokens} (at most maxChunk) at the next positions and returns the last token's logits. */
    public float[] forward(int[] tokens) {
        int n = tokens.length;
        if (n < 1 || n > maxChunk) {
            throw new IllegalArgumentException("1 to " + maxChunk + " tokens per call, got " + n);
        }
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        int hs = c.headDim();
        for (int t = 0; t < n; t++) {
            System.arraycopy(w.tokenEmbedding, tokens[t] * dim, x, t * dim, dim);
            positions[t] = position + t;
        }
        MemorySegment qSeg = MemorySegment.ofArray(q).asSlice(0, (long) n * dim * Float.BYTES);
        MemorySegment attSeg = MemorySegment.ofArray(att).asSlice(0, (long) n * dim * Float.BYTES);
        for (int l = 0; l < c.layers(); l++) {
            for (int t = 0; t < n; t++) {
                LlamaMath.rmsnorm(xb, t * dim, x, t * dim, w.rmsAtt[l], dim, c.normEps());
            }
            LlamaMath.matmul(q, xb, w.wq[l], n, dim, dim);
            LlamaMath.matmul(k, xb, w.wk[l], n, dim, kvDim);
            LlamaMath.matmul(v, xb, w.wv[l], n, dim, kvDim);
            for (int t = 0; t < n; t++) {
                LlamaMath.rope(q, t * dim, k, t * kvDim, dim, kvDim, hs, c.ropeTheta(), positions[t]);
            }
            // K/V in the Hugging Face layout [tokens, kvHeads, headDim], viewed in place
            KvTensor keys = KvTensor.of(MemorySegment.ofArray(k), DType.F32, n, c.kvHeads(), hs);
            KvTensor values = KvTensor.of(MemorySegment.ofArray(v), DType.F32, n, c.kvHeads(), hs);
            if (n == 1) {
                seq.append(l, keys, values, positions[0]);
                attention.decode(seq, l, qSeg, attSeg);
            } else {
                seq.appendChunk(l, keys, values, java.util.Arrays.copyOf(positions, n));
                attention.prefill(seq, l, qSeg, n, attSeg);
            }
            LlamaMath.matmul(xb2, att, w.wo[l], n, dim, dim);
            for (int i = 0; i < n * dim; i++) {
                x[i] += xb2[i];
            }
            for (int t = 0; t < n; t++) {
                LlamaMath.rmsnorm(xb, t * dim, x, t * dim, w.rmsFfn[l], dim, c.normEps());
            }
            LlamaMath.matmul(hb, xb, w.w1[l], n, dim, hidden);
            LlamaMath.matmul(hb2, xb, w.w3[l], n, dim, hidden);
            LlamaMath.swiglu(hb, hb2, n * hidden);
            LlamaMath.matmul(xb, hb, w.w2[l], n, hidden, dim);
            for (int i = 0; i < n * dim; i++) {
                x[i] += xb[i];
            }
        }
        position += n;
        int last = (n - 1) * dim;
        LlamaMath.rmsnorm(xb, 0, x, last, w.rmsFinal, dim, c.normEps());
        LlamaMath.matmul(logits, xb, w.classifier, 1, dim, c.vocabSize());
        return logits;
    }

    /**
     * llama2.c's generation loop ({@code run.c}): BOS + prompt, forced prompt tokens, then sampled ones until
     * {@code steps} positions or BOS. Returns the generated token ids (prompt continuation included, BOS not).
     */
    public int[] generate(Tokenizer tokenizer, String prompt, int steps, Sampler sampler) {
        int[] prompt0 = tokenizer.encode(prompt, true, false);
        int fed = Math.min(prompt0.length, steps);
        int[] ids = new int[steps];
        int count = 0;
        float[] out = null;
        for (int from = 0; from < fed; from += maxChunk) {
            out = forward(java.util.Arrays.copyOfRange(prompt0, from, Math.min(fed, from + maxChunk)));
        }
        for (int pos = 0; pos + 1 < fed; pos++) {
            if (prompt0[pos + 1] == tokenizer.bos()) {
                return java.util.Arrays.copyOf(ids, count);
            }
            ids[count++] = prompt0[pos + 1];
        }
        if (fed < prompt0.length) {
            ids[count++] = prompt0[fed];
            return java.util.Arrays.copyOf(ids, count);
        }
        int pos = fed - 1;
        while (true) {
            int next = sampler.sample(out);
            pos++;
            if (next == tokenizer.bos()) {
                break;
            }
            ids[count++] = next;
            if (pos >= steps) {
                break;
            }
            out = forward(new int[] {next});
        }
        return java.util.Arrays.copyOf(ids, count);
    }

    /** Bytes of native memory the store holds (0 after close). */
    public long reservedBytes() {
        return store.stats().reservedBytes();
    }

    @Override
    public void close() {
        attention.close();
        seq.close();
        store.close();
    }
}
