package io.kvslab.snapshot;

import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;

import java.util.List;

/**
 * A snapshot could not be written or read. {@link #reason()} says which kind of failure it was, so a caller can
 * react to each (retry an I/O failure, discard a corrupt file, add JVM flags, open a store with the file's layout);
 * the message names the file, the field or block and what was expected. Whatever the failure, nothing was restored
 * and no target file was replaced by a partial one.
 */
public final class SnapshotException extends KvSlabException {
    /** What kind of failure this is. */
    public enum Reason {
        /** The file could not be read or written: missing, unreadable, a directory that does not exist, a full disk
         *  (the I/O exception is the cause, where there is one). */
        IO,
        /** The file is not a complete, intact KVSlab snapshot: wrong magic, truncated, trailing bytes, a checksum
         *  mismatch, or an inconsistent structure. */
        CORRUPT,
        /** The file was written in a format version this build cannot read; the message names it and the
         *  versions this build reads. */
        UNSUPPORTED_VERSION,
        /** The file was taken with a KV layout other than the target store's; the message names both
         *  ({@link Snapshots#inspect} returns the file's). */
        LAYOUT_MISMATCH,
        /** The request does not fit an intact file or store: a file of several sequences handed to a call that
         *  restores one, or blocks larger than the format holds. */
        UNSUITABLE,
        /** Snapshots cannot run in this JVM: Chronicle Bytes (an optional dependency) is not on the class path, or
         *  the JVM lacks the flags it needs ({@link #missingFlags()}). Thrown before any file is touched. */
        PREREQUISITE
    }

    /** Which kind of failure. */
    private final Reason reason;
    /** For {@link Reason#PREREQUISITE}: the JVM flags to add. */
    private final List<String> missingFlags;

    private SnapshotException(Reason reason, String message, Throwable cause, List<String> missingFlags) {
        super(message, cause);
        this.reason = reason;
        this.missingFlags = List.copyOf(missingFlags);
    }

    /** An I/O failure (or a missing file), with its cause where there is one. */
    static SnapshotException io(String message, Throwable cause) {
        return new SnapshotException(Reason.IO, message, cause, List.of());
    }

    /** A file that is not a complete, intact snapshot. */
    static SnapshotException corrupt(String message) {
        return new SnapshotException(Reason.CORRUPT, message, null, List.of());
    }

    /** A request that does not fit an intact file or store. */
    static SnapshotException unsuitable(String message) {
        return new SnapshotException(Reason.UNSUITABLE, message, null, List.of());
    }

    /** A format version this build cannot read. */
    static SnapshotException unsupportedVersion(String file, int version) {
        return new SnapshotException(Reason.UNSUPPORTED_VERSION, "snapshot " + file + " has format version " + version
                + "; this build reads versions " + SnapshotFormat.MIN_VERSION + " to " + SnapshotFormat.VERSION,
                null, List.of());
    }

    /** A file taken with another layout than the store's. */
    static SnapshotException layoutMismatch(String file, KvLayout fileLayout, KvLayout storeLayout) {
        return new SnapshotException(Reason.LAYOUT_MISMATCH, "snapshot " + file + " was taken with layout "
                + fileLayout + " but the store has " + storeLayout + "; restore into a store with the same layers, "
                + "heads, head dim, dtype and tokens per block", null, List.of());
    }

    /** Chronicle missing, or the JVM flags it needs. */
    static SnapshotException prerequisite(String message, List<String> missingFlags) {
        return new SnapshotException(Reason.PREREQUISITE, message, null, missingFlags);
    }

    /**
     * Which kind of failure this is.
     *
     * @return the reason, never null
     */
    public Reason reason() {
        return reason;
    }

    /**
     * The JVM flags to add, for {@link Reason#PREREQUISITE}.
     *
     * @return an unmodifiable list of flags, e.g. {@code --add-opens=java.base/java.lang.reflect=ALL-UNNAMED};
     *         empty for every other reason and when the problem is a missing jar
     */
    public List<String> missingFlags() {
        return missingFlags;
    }
}
