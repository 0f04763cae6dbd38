package io.kvslab.snapshot;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The contents of the committed format-version-1 snapshot fixtures (kvstore/src/test/resources/snapshot-v1), and
 * the program that wrote them with the version-1 writer (commit f337eaa, before format version 2 existed):
 * {@code main(dir)} writes {@code v1-f32.kvsnap}, {@code v1-f16.kvsnap} and {@code v1-bf16.kvsnap}. Running it
 * now would write the current version, so the files are kept, not regenerated.
 *
 * <p>Each file holds two sequences of {@link #layout}: {@code base} with positions 0..9 in every table, then
 * {@code child}, a fork of {@code base} that dropped positions 2..4 and appended 10..12 (so the two share their
 * first block in most tables and are ragged nowhere else). Values are {@link Rows#value}.
 */
final class SnapshotV1Fixtures {
    private SnapshotV1Fixtures() {}

    static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16};

    static KvLayout layout(DType dt) {
        return new KvLayout(2, 4, 2, 8, dt, 4);
    }

    static String fileName(DType dt) {
        return "v1-" + dt.name().toLowerCase(java.util.Locale.ROOT) + ".kvsnap";
    }

    /** Positions every table of the base sequence holds. */
    static long[] basePositions() {
        return new long[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    }

    /** Positions every table of the child holds. */
    static long[] childPositions() {
        return new long[] {0, 1, 5, 6, 7, 8, 9, 10, 11, 12};
    }

    static List<Sequence> build(KvStore store) {
        Sequence base = store.newSequence();
        Rows.fill(base, 0, 10);
        Sequence child = base.fork();
        child.removePositions(2, 5);
        Rows.fill(child, 10, 13);
        return List.of(base, child);
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        Files.createDirectories(dir);
        for (DType dt : DTYPES) {
            try (KvStore store = KvStore.open(layout(dt))) {
                List<Sequence> seqs = build(store);
                Snapshots.save(seqs, dir.resolve(fileName(dt)));
                seqs.forEach(Sequence::close);
            }
        }
    }
}
