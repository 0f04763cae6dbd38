package io.kvslab.snapshot;

import java.util.List;

/**
 * Snapshots cannot run in this JVM: Chronicle Bytes (an optional dependency of kvslab-core) is not on the class
 * path, or the JVM lacks the flags it needs. Thrown by the first {@link Snapshots} call, before any file is touched.
 */
public final class SnapshotPrerequisiteException extends SnapshotException {
    /** The JVM flags to add. */
    private final List<String> missingFlags;

    SnapshotPrerequisiteException(String message, List<String> missingFlags) {
        super(message);
        this.missingFlags = List.copyOf(missingFlags);
    }

    /**
     * The JVM flags to add (empty when the problem is a missing jar).
     *
     * @return an unmodifiable list of flags, e.g. {@code --add-opens=java.base/java.lang.reflect=ALL-UNNAMED}
     */
    public List<String> missingFlags() {
        return missingFlags;
    }
}
