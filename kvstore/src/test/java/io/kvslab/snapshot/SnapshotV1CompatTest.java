package io.kvslab.snapshot;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.table.RawBlocks;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Files written by format version 1 (committed fixtures, {@link SnapshotV1Fixtures}) still inspect and restore:
 * the layout, the positions, the values (independently computed, dtype-rounded) and the block sharing between
 * the two saved sequences.
 */
class SnapshotV1CompatTest {
    static DType[] dtypes() {
        return SnapshotV1Fixtures.DTYPES;
    }

    static Path fixture(DType dt) {
        return Path.of("src/test/resources/snapshot-v1", SnapshotV1Fixtures.fileName(dt));
    }

    @ParameterizedTest
    @MethodSource("dtypes")
    void versionOneFilesInspectWithTheirLayout(DType dt) {
        SnapshotInfo info = Snapshots.inspect(fixture(dt));
        assertEquals(1, info.formatVersion());
        assertEquals(SnapshotV1Fixtures.layout(dt), info.layout());
        assertEquals(2, info.sequenceIds().size());
        // base: 10 rows per table, child: 10 rows per table; 2 layers x 2 heads each
        assertEquals(2L * 2 * 2 * 10, info.rows());
    }

    @ParameterizedTest
    @MethodSource("dtypes")
    void versionOneFilesRestoreTheirRowsAndSharing(DType dt) {
        KvLayout layout = SnapshotV1Fixtures.layout(dt);
        try (KvStore store = KvStore.open(layout)) {
            List<RestoredSequence> restored = Snapshots.restoreAll(store, fixture(dt));
            assertEquals(2, restored.size());
            Sequence base = restored.get(0).sequence();
            Sequence child = restored.get(1).sequence();
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    assertArrayEquals(SnapshotV1Fixtures.basePositions(), base.positions(l, h));
                    assertArrayEquals(SnapshotV1Fixtures.childPositions(), child.positions(l, h));
                    // positions 0, 1 of the child's first block were its parent's; the removal rewrote it
                    long[] baseIds = RawBlocks.blockIds(base, l, h, true);
                    long[] childIds = RawBlocks.blockIds(child, l, h, true);
                    assertEquals(3, baseIds.length);
                    assertEquals(3, childIds.length);
                    assertNotEquals(baseIds[0], childIds[0]);
                }
            }
            SnapshotRoundTripTest.assertHoldsExpectedRows(base);
            SnapshotRoundTripTest.assertHoldsExpectedRows(child);
            base.close();
            child.close();
        }
    }
}
