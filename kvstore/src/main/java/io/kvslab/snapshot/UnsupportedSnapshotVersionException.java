package io.kvslab.snapshot;

/** A snapshot was written in a format version this build cannot read. */
public final class UnsupportedSnapshotVersionException extends SnapshotException {
    private final int version;

    public UnsupportedSnapshotVersionException(String file, int version) {
        super("snapshot " + file + " has format version " + version + "; this build reads versions "
                + SnapshotFormat.MIN_VERSION + " to " + SnapshotFormat.VERSION);
        this.version = version;
    }

    /** The version found in the file. */
    public int version() {
        return version;
    }
}
