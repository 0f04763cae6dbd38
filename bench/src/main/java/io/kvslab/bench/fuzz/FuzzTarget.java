package io.kvslab.bench.fuzz;

/** What a fuzz campaign attacks: the snapshot reader, the GGUF loader, or the llama2.c checkpoint and tokenizer loaders. */
public enum FuzzTarget {
    /** {@code Snapshots.inspect} then {@code Snapshots.restoreAll}, raw mutations and mutations with CRCs recomputed. */
    SNAPSHOT,
    /** {@code LoadedModel.load} of a GGUF file. */
    GGUF,
    /** {@code LoadedModel.load} of a llama2.c checkpoint with its tokenizer file (either one mutated). */
    LLAMA2C
}
