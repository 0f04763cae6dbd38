package io.kvslab.bench.model;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Builds a {@link LlamaModel} and its {@link Tokenizer} from a GGUF file of architecture {@code llama}. Tensors follow
 * llama.cpp's names ({@code token_embd}, {@code blk.N.attn_q} ..., {@code output_norm}, {@code output}); a missing
 * {@code output} means the classifier is the token embedding. RoPE is the adjacent-pair kind llama.cpp uses for this
 * architecture (llama2.c's), so no permutation is applied.
 */
final class GgufModelLoader {
    private static final String SPM_SPACE = "\u2581";

    private GgufModelLoader() {}

    static LoadedModel load(Path path) {
        try (ModelFile f = ModelFile.open(path)) {
            GgufFile g = GgufFile.parse(f);
            String arch = g.require("general.architecture", String.class);
            if (!arch.equals("llama")) {
                throw new ModelFormatException(path, "architecture is '" + arch + "'; this runner supports only 'llama'");
            }
            int dim = g.requireInt("llama.embedding_length", 1, 1 << 20);
            int hidden = g.requireInt("llama.feed_forward_length", 1, 1 << 22);
            int layers = g.requireInt("llama.block_count", 1, 1 << 12);
            int heads = g.requireInt("llama.attention.head_count", 1, 1 << 12);
            int kvHeads = g.optionalInt("llama.attention.head_count_kv", heads, 1, 1 << 12);
            int context = g.requireInt("llama.context_length", 1, ModelConfig.MAX_CONTEXT);
            GgufFile.TensorInfo emb = g.tensors().get("token_embd.weight");
            if (emb == null || emb.dims().length != 2) {
                throw new ModelFormatException(path, emb == null ? "tensor token_embd.weight is missing"
                        : "tensor token_embd.weight has shape " + emb.shape() + ", expected [embedding_length, vocab]");
            }
            long vocabL = emb.dims()[1];
            if (vocabL > Integer.MAX_VALUE) {
                throw new ModelFormatException(path, "vocabulary of " + vocabL + " tokens is too large");
            }
            int vocab = (int) vocabL;
            String problem = ModelConfig.problem(dim, hidden, layers, heads, kvHeads, vocab, context);
            if (problem != null) {
                throw new ModelFormatException(path, "inconsistent llama metadata: " + problem);
            }
            int ropeDims = g.optionalInt("llama.rope.dimension_count", dim / heads, 1, 1 << 20);
            if (ropeDims != dim / heads) {
                throw new ModelFormatException(path, "llama.rope.dimension_count is " + ropeDims
                        + "; this runner rotates whole heads, expected the head size " + dim / heads);
            }
            float eps = g.optionalFloat("llama.attention.layer_norm_rms_epsilon", ModelConfig.DEFAULT_NORM_EPS);
            float theta = g.optionalFloat("llama.rope.freq_base", ModelConfig.DEFAULT_ROPE_THETA);
            if (!(eps > 0 && eps < 1) || !(theta > 1 && Float.isFinite(theta))) {
                throw new ModelFormatException(path, "rms epsilon " + eps + " / rope freq_base " + theta
                        + " out of range; expected 0 < epsilon < 1 and a finite base > 1");
            }
            ModelConfig c = new ModelConfig(dim, hidden, layers, heads, kvHeads, vocab, context, theta, eps);
            int kvDim = c.kvDim();
            float[] embedding = g.readTensor("token_embd.weight", dim, vocab);
            float[][] rmsAtt = new float[layers][];
            float[][] wq = new float[layers][];
            float[][] wk = new float[layers][];
            float[][] wv = new float[layers][];
            float[][] wo = new float[layers][];
            float[][] rmsFfn = new float[layers][];
            float[][] w1 = new float[layers][];
            float[][] w2 = new float[layers][];
            float[][] w3 = new float[layers][];
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                rmsAtt[l] = g.readTensor(p + "attn_norm.weight", dim);
                wq[l] = g.readTensor(p + "attn_q.weight", dim, dim);
                wk[l] = g.readTensor(p + "attn_k.weight", dim, kvDim);
                wv[l] = g.readTensor(p + "attn_v.weight", dim, kvDim);
                wo[l] = g.readTensor(p + "attn_output.weight", dim, dim);
                rmsFfn[l] = g.readTensor(p + "ffn_norm.weight", dim);
                w1[l] = g.readTensor(p + "ffn_gate.weight", dim, hidden);
                w2[l] = g.readTensor(p + "ffn_down.weight", hidden, dim);
                w3[l] = g.readTensor(p + "ffn_up.weight", dim, hidden);
            }
            float[] rmsFinal = g.readTensor("output_norm.weight", dim);
            float[] cls = g.tensors().containsKey("output.weight") ? g.readTensor("output.weight", dim, vocab) : embedding;
            LlamaModel model = new LlamaModel(c, new ModelWeights(c, embedding, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3,
                    rmsFinal, cls), path.getFileName().toString());
            return new LoadedModel(model, tokenizer(g, vocab));
        }
    }

    /** The SentencePiece vocabulary stored in the metadata, with U+2581 turned back into spaces as llama2.c stores it. */
    private static Tokenizer tokenizer(GgufFile g, int vocab) {
        Path path = g.path();
        String kind = g.require("tokenizer.ggml.model", String.class);
        if (!kind.equals("llama")) {
            throw new ModelFormatException(path, "tokenizer.ggml.model is '" + kind
                    + "'; this runner supports only the SentencePiece BPE tokenizer 'llama'");
        }
        GgufFile.StringArray tokens = g.requireStrings("tokenizer.ggml.tokens");
        float[] scores = g.requireFloats("tokenizer.ggml.scores");
        if (tokens.size() != vocab || scores.length != vocab) {
            throw new ModelFormatException(path, "tokenizer has " + tokens.size() + " tokens and " + scores.length
                    + " scores, expected " + vocab + " of each (the rows of token_embd.weight)");
        }
        byte[][] pieces = new byte[vocab][];
        for (int i = 0; i < vocab; i++) {
            if (!Float.isFinite(scores[i])) {
                throw new ModelFormatException(path, "tokenizer.ggml.scores[" + i + "] is " + scores[i]
                        + ", expected a finite number");
            }
            pieces[i] = tokens.get(i).replace(SPM_SPACE, " ").getBytes(StandardCharsets.UTF_8);
        }
        int bos = g.optionalInt("tokenizer.ggml.bos_token_id", Llama2cTokenizer.BOS, 0, vocab - 1);
        int eos = g.optionalInt("tokenizer.ggml.eos_token_id", Llama2cTokenizer.EOS, 0, vocab - 1);
        return new Tokenizer(pieces, scores, bos, eos);
    }
}
