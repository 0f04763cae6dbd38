package io.kvslab.bench.model;

import io.kvslab.KvSlabException;

import java.nio.file.Path;

/**
 * A model or tokenizer file is truncated, corrupt or of a kind this runner does not support. The message names the
 * file, what was found and what was expected.
 */
public final class ModelFormatException extends KvSlabException {
    private final Path file;

    public ModelFormatException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public ModelFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    /** The file that could not be read. */
    public Path file() {
        return file;
    }
}
