package io.kvslab.bench.model;

import java.nio.file.Path;

/**
 * Reads llama2.c's tokenizer file: int32 max_token_length, then per token float32 score, int32 byte length and the
 * bytes. The file does not store its vocabulary size: it must hold exactly as many tokens as the model's vocabulary.
 * BOS is token 1 and EOS token 2, as in llama2.c.
 */
final class Llama2cTokenizer {
    static final int BOS = 1;
    static final int EOS = 2;

    private Llama2cTokenizer() {}

    static Tokenizer load(Path path, int vocabSize) {
        try (ModelFile f = ModelFile.open(path)) {
            int maxLen = f.i32("max_token_length");
            if (maxLen <= 0 || maxLen > 1 << 16) {
                throw new ModelFormatException(path, "max_token_length is " + maxLen
                        + ", expected a positive length of at most 65536 (is this a llama2.c tokenizer file?)");
            }
            // every token takes at least 8 bytes (score and length): bound the vocabulary before allocating for it
            if (vocabSize < 0 || vocabSize > f.remaining() / 8) {
                throw new ModelFormatException(path, "the model's vocabulary of " + vocabSize + " tokens needs at least "
                        + 8L * vocabSize + " bytes, the file has " + f.remaining() + " after max_token_length; the "
                        + "tokenizer is truncated or belongs to another model");
            }
            byte[][] pieces = new byte[vocabSize][];
            float[] scores = new float[vocabSize];
            for (int i = 0; i < vocabSize; i++) {
                if (f.position() == f.size()) {
                    throw new ModelFormatException(path, "file ends after " + i + " tokens but the model's vocabulary has "
                            + vocabSize + "; the tokenizer is truncated or belongs to another model");
                }
                scores[i] = f.f32("score of token " + i);
                if (!Float.isFinite(scores[i])) {
                    throw new ModelFormatException(path, "score of token " + i + " is " + scores[i] + ", expected a finite number");
                }
                int len = f.i32("length of token " + i);
                if (len < 0 || len > maxLen) {
                    throw new ModelFormatException(path, "token " + i + " has length " + len + ", expected 0.."
                            + maxLen + " (max_token_length); the file is corrupt");
                }
                pieces[i] = f.bytes(len, "bytes of token " + i);
            }
            if (f.position() != f.size()) {
                throw new ModelFormatException(path, (f.size() - f.position()) + " bytes remain after the " + vocabSize
                        + " tokens of the model's vocabulary; the tokenizer belongs to a model with a larger vocabulary or is corrupt");
            }
            if (vocabSize <= EOS) {
                throw new ModelFormatException(path, "vocabulary of " + vocabSize + " tokens has no BOS (1) and EOS (2)");
            }
            return new Tokenizer(pieces, scores, BOS, EOS);
        }
    }
}
