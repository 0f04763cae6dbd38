package io.kvslab.bench.fuzz;

/** How one fuzz case ended. */
enum Outcome {
    /** The reader refused the file with the library's typed exception, naming the file. */
    TYPED_REJECTION,
    /** The file was read (and used) without error, and the oracle found nothing wrong with what was accepted. */
    ACCEPTED,
    /** Any other exception or error escaped (OutOfMemoryError, IndexOutOfBounds, InternalError ...). */
    UNEXPECTED_EXCEPTION,
    /**
     * No exception, or a typed one, but a rule was broken: a snapshot restored non-finite values or leaked blocks, a
     * GGUF with overlapping tensors or a checkpoint of the wrong size was accepted, a typed message does not name
     * the file.
     */
    ORACLE_VIOLATION,
    /** The case did not finish within the per-case timeout. */
    HANG
}
