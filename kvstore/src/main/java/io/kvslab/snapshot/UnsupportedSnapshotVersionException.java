package io.kvslab.snapshot;

/** A snapshot was written in a format version this build cannot read. */
public final class UnsupportedSnapshotVersionException extends SnapshotException {
    /** The version found in the file. */
    private final int version;

    /**
     * An exception naming the file, its version and the versions this build reads.
     *
     * @param file the snapshot file, as named in the message
     * @param version the version found
     */
    public UnsupportedSnapshotVersionException(String file, int version) {
        super("snapshot " + file + " has format version " + version + "; this build reads versions "
                + SnapshotFormat.MIN_VERSION + " to " + SnapshotFormat.VERSION);
        this.version = version;
    }

    /**
     * The version found in the file.
     *
     * @return the version number read from the file's header
     */
    public int version() {
        return version;
    }
}
