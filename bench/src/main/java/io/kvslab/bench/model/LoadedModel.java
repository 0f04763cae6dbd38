package io.kvslab.bench.model;

import java.nio.file.Path;

/**
 * A model with the tokenizer that goes with it.
 *
 * @param model     geometry and weights
 * @param tokenizer the vocabulary
 */
public record LoadedModel(LlamaModel model, Tokenizer tokenizer) {
    public LoadedModel {
        if (tokenizer.vocabSize() != model.config().vocabSize()) {
            throw new IllegalArgumentException("tokenizer has " + tokenizer.vocabSize() + " tokens but the model's vocabulary has "
                    + model.config().vocabSize());
        }
    }

    /**
     * Loads a model file: either a GGUF file (recognised by its magic), which carries its own tokenizer, or a llama2.c
     * checkpoint, which needs {@code tokenizer} (a llama2.c tokenizer file such as {@code tok512.bin}). A tokenizer
     * given with a GGUF file replaces the embedded one.
     *
     * @throws ModelFormatException naming the file and what was wrong with it
     */
    public static LoadedModel load(Path model, Path tokenizer) {
        if (isGguf(model)) {
            LoadedModel m = GgufModelLoader.load(model);
            return tokenizer == null ? m
                    : new LoadedModel(m.model(), Llama2cTokenizer.load(tokenizer, m.model().config().vocabSize()));
        }
        LlamaModel m = Llama2cCheckpoint.load(model);   // first: a file that is no model at all is named as such
        if (tokenizer == null) {
            throw new ModelFormatException(model, "is a llama2.c checkpoint, which has no tokenizer inside; give the "
                    + "llama2.c tokenizer file (e.g. tok512.bin) too");
        }
        return new LoadedModel(m, Llama2cTokenizer.load(tokenizer, m.config().vocabSize()));
    }

    private static boolean isGguf(Path model) {
        try (ModelFile f = ModelFile.open(model)) {
            return f.size() >= 4 && f.i32("magic") == GgufFile.MAGIC;
        }
    }
}
