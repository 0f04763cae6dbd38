package io.kvslab.snapshot;

/**
 * A file is not a complete, intact KVSlab snapshot: wrong magic, truncated, trailing bytes, a checksum mismatch,
 * or an inconsistent structure. The message names the file, the field or block and what was expected.
 */
public final class CorruptSnapshotException extends SnapshotException {
    /**
     * An exception describing the defect.
     *
     * @param message names the file, the field or block and what was expected
     */
    public CorruptSnapshotException(String message) {
        super(message);
    }
}
