package io.kvslab.bench.fuzz;

/** What a field of a file format means; the mutator attacks counts, sizes, dimensions and offsets hardest. */
enum FieldKind {
    /** How many of something follow (sequences, blocks, tensors, array elements, rows). */
    COUNT,
    /** A byte length (section sizes, string lengths). */
    SIZE,
    /** A tensor or layout dimension: multiplied with others into a size. */
    DIM,
    /** Where something starts (section or tensor offsets). */
    OFFSET,
    /** An index into a table (block indices of a snapshot table). */
    INDEX,
    /** A type or kind code, magic or version. */
    ENUM,
    /** A checksum over other bytes. */
    CHECKSUM,
    /** Payload or other plain data (positions, ids, weights). */
    VALUE;

    /** Relative weight of picking a field of this kind for a targeted mutation. */
    int weight() {
        return switch (this) {
            case COUNT, SIZE, DIM, OFFSET -> 8;
            case INDEX -> 4;
            case ENUM -> 2;
            case CHECKSUM, VALUE -> 1;
        };
    }
}
