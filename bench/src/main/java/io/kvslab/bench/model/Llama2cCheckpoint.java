package io.kvslab.bench.model;

import java.nio.file.Path;

/**
 * Reads a llama2.c checkpoint (version 0, float32): a 28-byte header of seven int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a positive vocab_size means the classifier is
 * the token embedding), then the tensors in llama2.c's order, then two legacy RoPE tables (skipped; RoPE is
 * computed), then the classifier if it is not shared.
 */
final class Llama2cCheckpoint {
    static final int HEADER_BYTES = 28;

    private Llama2cCheckpoint() {}

    static LlamaModel load(Path path) {
        try (ModelFile f = ModelFile.open(path)) {
            if (f.size() < HEADER_BYTES) {
                throw new ModelFormatException(path, "file has " + f.size() + " bytes, shorter than the "
                        + HEADER_BYTES + "-byte llama2.c header");
            }
            int dim = f.i32("dim");
            int hidden = f.i32("hidden_dim");
            int layers = f.i32("n_layers");
            int heads = f.i32("n_heads");
            int kvHeads = f.i32("n_kv_heads");
            int rawVocab = f.i32("vocab_size");
            int seqLen = f.i32("seq_len");
            boolean shared = rawVocab > 0;
            int vocab = rawVocab == Integer.MIN_VALUE ? 0 : Math.abs(rawVocab);
            String problem = ModelConfig.problem(dim, hidden, layers, heads, kvHeads, vocab, seqLen);
            if (problem != null) {
                throw new ModelFormatException(path, "not a llama2.c checkpoint or GGUF file (as a llama2.c header: "
                        + problem + ")");
            }
            if (seqLen > ModelConfig.MAX_CONTEXT) {
                throw new ModelFormatException(path, "llama2.c header claims seq_len " + seqLen + ", allowed 1.."
                        + ModelConfig.MAX_CONTEXT + " (the context length cap, as for GGUF's llama.context_length)");
            }
            ModelConfig c = new ModelConfig(dim, hidden, layers, heads, kvHeads, vocab, seqLen,
                    ModelConfig.DEFAULT_ROPE_THETA, ModelConfig.DEFAULT_NORM_EPS);
            long expected;
            try {
                expected = expectedBytes(c, shared);
            } catch (ArithmeticException e) {
                throw new ModelFormatException(path, "header sizes overflow (dim=" + dim + ", hidden_dim=" + hidden
                        + ", n_layers=" + layers + ", vocab_size=" + vocab + "); the header is corrupt");
            }
            if (f.size() != expected) {
                throw new ModelFormatException(path, "file has " + f.size() + " bytes but a llama2.c checkpoint with "
                        + describe(c, shared) + " has exactly " + expected + " bytes; the file is "
                        + (f.size() < expected ? "truncated" : "longer than its header says") + " or corrupt");
            }
            int kvDim = c.kvDim();
            long d = dim;
            float[] emb = f.floats(vocab * d, "token_embedding_table");
            float[][] rmsAtt = perLayer(f, layers, d, "rms_att_weight");
            float[][] wq = perLayer(f, layers, d * dim, "wq");
            float[][] wk = perLayer(f, layers, d * kvDim, "wk");
            float[][] wv = perLayer(f, layers, d * kvDim, "wv");
            float[][] wo = perLayer(f, layers, d * dim, "wo");
            float[][] rmsFfn = perLayer(f, layers, d, "rms_ffn_weight");
            float[][] w1 = perLayer(f, layers, d * hidden, "w1");
            float[][] w2 = perLayer(f, layers, d * hidden, "w2");
            float[][] w3 = perLayer(f, layers, d * hidden, "w3");
            float[] rmsFinal = f.floats(d, "rms_final_weight");
            // skip the legacy freq_cis_real and freq_cis_imag tables: seq_len * head_size / 2 floats each
            f.seek(f.position() + 4L * seqLen * c.headDim());
            float[] cls = shared ? emb : f.floats(vocab * d, "wcls");
            return new LlamaModel(c, new ModelWeights(c, emb, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, cls),
                    path.getFileName().toString());
        }
    }

    private static float[][] perLayer(ModelFile f, int layers, long each, String name) {
        float[][] out = new float[layers][];
        for (int l = 0; l < layers; l++) {
            out[l] = f.floats(each, name + " of layer " + l);
        }
        return out;
    }

    static long expectedBytes(ModelConfig c, boolean shared) {
        long dim = c.dim();
        long kvDim = c.kvDim();
        long hidden = c.hiddenDim();
        long layers = c.layers();
        long perLayer = Math.addExact(Math.addExact(2 * dim + 2 * dim * dim, 2 * Math.multiplyExact(dim, kvDim)),
                Math.multiplyExact(3 * dim, hidden));
        long floats = Math.addExact(Math.multiplyExact((long) c.vocabSize(), dim), Math.multiplyExact(layers, perLayer));
        floats = Math.addExact(floats, dim);
        floats = Math.addExact(floats, Math.multiplyExact((long) c.contextLength(), (long) c.headDim()));
        if (!shared) {
            floats = Math.addExact(floats, Math.multiplyExact((long) c.vocabSize(), dim));
        }
        return Math.addExact(HEADER_BYTES, Math.multiplyExact(floats, 4L));
    }

    private static String describe(ModelConfig c, boolean shared) {
        return "dim=" + c.dim() + " hidden_dim=" + c.hiddenDim() + " n_layers=" + c.layers() + " n_heads=" + c.heads()
                + " n_kv_heads=" + c.kvHeads() + " vocab_size=" + c.vocabSize() + " seq_len=" + c.contextLength()
                + (shared ? " (shared classifier)" : " (separate classifier)");
    }
}
