package io.kvslab.bench.cli;

import io.kvslab.bench.model.LoadedModel;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;

/**
 * {@code --model} and {@code --tokenizer} of the commands that run the model on the bundled test model by default:
 * {@code $SHARED/models/stories260K.bin} with {@code tok512.bin}, SHARED being the {@code kvslab.shared} property or
 * {@code ../shared}.
 */
final class ModelFiles {
    @Spec(Spec.Target.MIXEE)
    private CommandSpec spec;

    @Option(names = "--model", paramLabel = "FILE",
            description = "llama2.c checkpoint (.bin) or GGUF file (default: $SHARED/models/stories260K.bin, SHARED ="
                    + " the kvslab.shared property or ../shared)")
    private Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "llama2.c tokenizer (default: $SHARED/models/tok512.bin for the default model; a GGUF file "
                    + "has its own)")
    private Path tokenizer;

    Path model() {
        return model != null ? model : shared().resolve("models/stories260K.bin");
    }

    /** Checks both files exist and loads them. */
    LoadedModel load() {
        Path m = Check.inputFile(spec, "--model", model());
        Path t = tokenizer != null ? tokenizer : model == null ? shared().resolve("models/tok512.bin") : null;
        return load(spec, m, t == null ? null : Check.inputFile(spec, "--tokenizer", t));
    }

    static LoadedModel load(CommandSpec spec, Path model, Path tokenizer) {
        Check.inputFile(spec, "--model", model);
        if (tokenizer != null) {
            Check.inputFile(spec, "--tokenizer", tokenizer);
        }
        return LoadedModel.load(model, tokenizer);
    }

    private static Path shared() {
        return Path.of(System.getProperty("kvslab.shared", "../shared"));
    }
}
