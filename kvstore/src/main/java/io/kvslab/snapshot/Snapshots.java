package io.kvslab.snapshot;

import io.kvslab.KvArgumentException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.internal.jfr.SnapshotEvent;

import java.nio.file.Path;
import java.util.function.Supplier;
import java.util.List;

/**
 * Saves sequences to snapshot files and restores them, bitwise (rows are stored in the store's dtype, byte for
 * byte, with their positions; compressed ragged sequences stay compressed, blocks shared between the saved
 * sequences stay shared after a restore).
 *
 * <p><b>Crash safety.</b> A save writes a temp file in the target's directory, syncs it, and renames it over the
 * target atomically; the header is written last. A crash or failure during a save leaves the target as it was
 * (absent, or the previous snapshot).
 *
 * <p><b>Verification.</b> Files are untrusted input. A restore checks the magic, format version, layout, size,
 * every count and size against the file's length and fixed bounds (docs/snapshots.md, "Bounds"), every section
 * checksum, the structure, every block checksum (CRC32C) and every payload value (finite in the dtype, as
 * {@code append} requires) before it allocates anything, and commits all sequences in one step. Files are read
 * with positional reads, so one truncated while it is read fails typed. A bad file throws
 * a {@link SnapshotException} whose {@link SnapshotException#reason() reason} is {@code CORRUPT},
 * {@code UNSUPPORTED_VERSION} or {@code LAYOUT_MISMATCH}, naming the file and the field, and restores nothing.
 *
 * <p>Sequences being saved must not be mutated meanwhile: a save reads them one table or block at a time, and a save
 * during which another thread appended to, evicted from or closed one fails with {@link io.kvslab.ConcurrentUseException}
 * and writes nothing. Other sequences may be mutated, and decoding the saved ones is fine.
 *
 * <p><b>Prerequisites.</b> Snapshots use Chronicle Bytes, an optional dependency of kvslab-core, and the JVM flags
 * {@code --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-exports=java.base/sun.nio.ch=ALL-UNNAMED}. Every
 * method first checks both and throws a {@link SnapshotException} with reason {@code PREREQUISITE} naming the
 * missing jar or flags ({@link SnapshotException#missingFlags()}).
 */
public final class Snapshots {
    private Snapshots() {}

    /**
     * Saves one sequence.
     *
     * @param sequence an open sequence
     * @param file the target file; replaced atomically (written to a temporary file, then moved)
     * @return what was written: layout, sequence ids, rows, blocks, file size
     */
    public static SnapshotInfo save(Sequence sequence, Path file) {
        return save(List.of(sequence), file);
    }

    /**
     * Saves several sequences of one store into one file; blocks they share are stored once.
     *
     * @param sequences open sequences of one store, not empty
     * @param file the target file; replaced atomically
     * @return what was written
     */
    public static SnapshotInfo save(List<Sequence> sequences, Path file) {
        ChronicleSupport.require();
        SnapshotEvent event = begin();
        SnapshotInfo info = SnapshotWriter.write(sequences, file, SnapshotWriter.Progress.NONE);
        commit(event, "save", file, () -> info);
        return info;
    }

    /**
     * Saves every open sequence of a store (in id order; none is fine). Prefix-cache entries are not saved.
     *
     * @param store an open store
     * @param file the target file; replaced atomically
     * @return what was written
     */
    public static SnapshotInfo saveStore(KvStore store, Path file) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        ChronicleSupport.require();
        List<Sequence> sequences = store.sequences();
        SnapshotWriter.checkSequences(sequences);
        SnapshotEvent event = begin();
        SnapshotInfo info = SnapshotWriter.write(store.layout(), sequences, file, SnapshotWriter.Progress.NONE);
        commit(event, "save", file, () -> info);
        return info;
    }

    /**
     * Reads and verifies a whole snapshot (checksums included) without restoring it.
     *
     * @param file the snapshot file
     * @return the file's layout, sequences and sizes
     */
    public static SnapshotInfo inspect(Path file) {
        ChronicleSupport.require();
        try (SnapshotReader reader = SnapshotReader.open(file)) {
            return reader.verify();
        }
    }

    /**
     * Restores a snapshot of exactly one sequence as a new sequence of {@code store} (with a new id).
     *
     * @param store an open store with the snapshot's layout
     * @param file a snapshot of exactly one sequence
     * @return the new, open sequence; the caller closes it
     */
    public static Sequence restore(KvStore store, Path file) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        ChronicleSupport.require();
        SnapshotEvent event = begin();
        try (SnapshotReader reader = SnapshotReader.open(file)) {
            if (reader.sequenceCount() != 1) {
                reader.checkLayout(store);
                throw SnapshotException.unsuitable("snapshot " + file + " holds " + reader.sequenceCount() + " sequences; "
                        + "restore() needs exactly one (use restoreAll)");
            }
            List<RestoredSequence> restored = reader.restoreAll(store);
            commit(event, "restore", file, reader::verify);
            return restored.get(0).sequence();
        }
    }

    /**
     * Restores every sequence of a snapshot as new sequences of {@code store}: all of them or none.
     *
     * @param store an open store with the snapshot's layout
     * @param file the snapshot file
     * @return one entry per saved sequence, in the file's order, each pairing the saved id with its new sequence
     */
    public static List<RestoredSequence> restoreAll(KvStore store, Path file) {
        if (store == null) {
            throw new KvArgumentException("store must not be null");
        }
        ChronicleSupport.require();
        SnapshotEvent event = begin();
        try (SnapshotReader reader = SnapshotReader.open(file)) {
            List<RestoredSequence> restored = reader.restoreAll(store);
            commit(event, "restore", file, reader::verify);
            return restored;
        }
    }

    /**
     * Replaces the contents of an open sequence with a snapshot of exactly one sequence (like llama.cpp's
     * {@code llama_state_seq_set_data} into another sequence id). On failure the target is unchanged.
     *
     * @param target an open sequence of a store with the snapshot's layout
     * @param file a snapshot of exactly one sequence
     */
    public static void restoreInto(Sequence target, Path file) {
        if (target == null) {
            throw new KvArgumentException("target must not be null");
        }
        ChronicleSupport.require();
        SnapshotEvent event = begin();
        try (SnapshotReader reader = SnapshotReader.open(file)) {
            reader.restoreInto(target);
            commit(event, "restore", file, reader::verify);
        }
    }

    /** A started event, or null while Flight Recorder is off (see {@link Jfr}). */
    private static SnapshotEvent begin() {
        if (!Jfr.recording()) {
            return null;
        }
        SnapshotEvent event = new SnapshotEvent();
        event.begin();
        return event;
    }

    /** {@code info} is only evaluated when the event is recorded (for restores it re-reads the file). */
    private static void commit(SnapshotEvent event, String operation, Path file, Supplier<SnapshotInfo> info) {
        if (event != null && event.shouldCommit()) {
            SnapshotInfo i = info.get();
            event.operation = operation;
            event.path = file.toString();
            event.sequences = i.sequenceIds().size();
            event.blocks = i.blocks();
            event.fileBytes = i.fileBytes();
            event.commit();
        }
    }
}
