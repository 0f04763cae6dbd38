package io.kvslab.snapshot;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SnapshotRoundTripTest {
    @TempDir
    Path dir;

    static KvLayout layout(DType dt) {
        return new KvLayout(2, 4, 2, 8, dt, 4);
    }

    /** Bitwise equality of every table (positions and raw K/V bytes) of two sequences. */
    static void assertSameContents(Sequence expected, Sequence actual) {
        KvLayout layout = expected.layout();
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                String where = "layer " + l + " head " + h;
                assertArrayEquals(expected.positions(l, h), actual.positions(l, h), "positions of " + where);
                assertArrayEquals(Rows.raw(expected, l, h, true), Rows.raw(actual, l, h, true), "K bytes of " + where);
                assertArrayEquals(Rows.raw(expected, l, h, false), Rows.raw(actual, l, h, false),
                        "V bytes of " + where);
            }
        }
    }

    /** Holds exactly the independently computed rows for its positions (dtype-rounded). */
    static void assertHoldsExpectedRows(Sequence s) {
        KvLayout layout = s.layout();
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                long[] p = s.positions(l, h);
                float[] k = new float[p.length * layout.headDim()];
                float[] v = new float[p.length * layout.headDim()];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                assertArrayEquals(Rows.expected(layout, l, h, p, true), k);
                assertArrayEquals(Rows.expected(layout, l, h, p, false), v);
            }
        }
    }

    /**
     * For every table slot, in order, the first slot naming the same physical block: two sequence lists have
     * the same sharing structure iff these lists are equal.
     */
    static List<String> sharingPattern(List<Sequence> sequences) {
        Map<Long, String> first = new HashMap<>();
        List<String> pattern = new ArrayList<>();
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            for (int l = 0; l < s.layout().layers(); l++) {
                for (int h = 0; h < s.layout().kvHeads(); h++) {
                    for (boolean keys : new boolean[] {true, false}) {
                        long[] ids = RawBlocks.blockIds(s, l, h, keys);
                        for (int b = 0; b < ids.length; b++) {
                            String slot = i + "/" + l + "/" + h + "/" + (keys ? "K" : "V") + "/" + b;
                            pattern.add(first.computeIfAbsent(ids[b], x -> slot));
                        }
                    }
                }
            }
        }
        return pattern;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void compressedForkedSequencesRoundTripBitwiseWithTheirSharing(DType dt) {
        KvLayout layout = layout(dt);
        Path file = dir.resolve("two.kvs");
        try (KvStore store = KvStore.open(layout); Sequence parent = store.newSequence()) {
            Rows.fill(parent, 0, 10);                      // 10 rows: blocks 4 + 4 + 2
            try (Sequence child = parent.fork()) {
                Rows.fill(child, 10, 13);                  // the child copies the shared partial tail
                parent.keep(1, 0, new int[] {0, 2, 3, 7, 9});   // compressed, ragged: parent rebuilds (shared)
                child.keep(0, 1, new int[] {1, 5, 6, 12});
                assertEquals(List.of(parent.id(), child.id()),
                        Snapshots.save(List.of(parent, child), file).sequenceIds());
                List<String> sharing = sharingPattern(List.of(parent, child));
                assertTrue(sharing.stream().distinct().count() < sharing.size(), "the fixture shares blocks");

                try (KvStore other = KvStore.open(layout)) {
                    List<RestoredSequence> restored = Snapshots.restoreAll(other, file);
                    try {
                        assertEquals(2, restored.size());
                        assertEquals(parent.id(), restored.get(0).savedId());
                        assertEquals(child.id(), restored.get(1).savedId());
                        Sequence p2 = restored.get(0).sequence();
                        Sequence c2 = restored.get(1).sequence();
                        assertSameContents(parent, p2);
                        assertSameContents(child, c2);
                        assertHoldsExpectedRows(p2);
                        assertHoldsExpectedRows(c2);
                        assertEquals(5, p2.length(1, 0), "compressed table restores compressed");
                        assertEquals(13, c2.length(1, 1));
                        assertEquals(sharing, sharingPattern(List.of(p2, c2)), "sharing structure preserved");
                        // Same distinct blocks, so the same live bytes, as the original store.
                        assertEquals(store.stats().liveBytes(), other.stats().liveBytes());
                        // Restored sequences are ordinary sequences: append, and the shared tail is copied on write.
                        Rows.fill(c2, 13, 15);
                        assertHoldsExpectedRows(c2);
                        assertSameContents(parent, p2);
                    } finally {
                        restored.forEach(r -> r.sequence().close());
                    }
                    assertEquals(0, other.stats().liveBytes());
                }
            }
        }
    }

    @Test
    void restoreIntoReplacesATargetAndFreesItsOldBlocks() {
        KvLayout layout = layout(DType.F16);
        Path file = dir.resolve("one.kvs");
        try (KvStore store = KvStore.open(layout)) {
            long live;
            try (Sequence s = store.newSequence()) {
                Rows.fill(s, 3, 12);
                Snapshots.save(s, file);
                live = store.stats().liveBytes();
            }
            try (Sequence target = store.newSequence()) {
                Rows.fill(target, 0, 30);
                long id = target.id();
                Snapshots.restoreInto(target, file);
                assertEquals(id, target.id(), "restored into the given sequence");
                assertArrayEquals(new long[] {3, 4, 5, 6, 7, 8, 9, 10, 11}, target.positions(1, 1));
                assertHoldsExpectedRows(target);
                assertEquals(live, store.stats().liveBytes(), "the 30-row contents were released");
                Rows.fill(target, 12, 14);   // continues after the restored positions
                assertHoldsExpectedRows(target);
            }
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void wholeStoreSnapshotIncludesEmptySequencesAndInspectReportsIt() throws Exception {
        KvLayout layout = layout(DType.BF16);
        Path file = dir.resolve("store.kvs");
        try (KvStore store = KvStore.open(layout)) {
            Sequence a = store.newSequence();
            Sequence empty = store.newSequence();
            Rows.fill(a, 0, 9);
            Sequence b = a.fork();
            SnapshotInfo info = Snapshots.saveStore(store, file);
            assertEquals(List.of(a.id(), empty.id(), b.id()), info.sequenceIds());
            assertEquals(Files.size(file), info.fileBytes());
            // 2 layers x 2 heads x (K, V) x 3 blocks, all shared by a and b.
            assertEquals(24, info.blocks());
            assertEquals(24, info.sharedBlocks());
            assertEquals(2L * 2 * 2 * 9, info.rows());

            SnapshotInfo inspected = Snapshots.inspect(file);
            assertEquals(info.sequenceIds(), inspected.sequenceIds());
            assertEquals(layout, inspected.layout());
            assertEquals(SnapshotFormat.UNIFORM_VERSION, inspected.formatVersion());   // one dtype: still version 2

            try (KvStore other = KvStore.open(layout)) {
                List<RestoredSequence> r = Snapshots.restoreAll(other, file);
                assertEquals(0, r.get(1).sequence().length(0, 0));
                assertSameContents(a, r.get(0).sequence());
                assertSameContents(b, r.get(2).sequence());
                assertEquals(24 * layout.blockBytes(), other.stats().liveBytes(), "shared blocks stored once");
                r.forEach(x -> x.sequence().close());
            }
            a.close();
            b.close();
            empty.close();
        }
    }

    @Test
    void restoreOfASingleSequenceGetsANewIdAndRejectsMultiSequenceFiles() {
        KvLayout layout = layout(DType.F32);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence(); Sequence t = store.newSequence()) {
            Rows.fill(s, 0, 6);
            Rows.fill(t, 0, 2);
            Path one = dir.resolve("one.kvs");
            Path two = dir.resolve("two.kvs");
            Snapshots.save(s, one);
            Snapshots.save(List.of(s, t), two);
            try (Sequence r = Snapshots.restore(store, one)) {
                assertNotEquals(s.id(), r.id());
                assertSameContents(s, r);
            }
            long live = store.stats().liveBytes();
            SnapshotException e = assertThrows(SnapshotException.class, () -> Snapshots.restore(store, two));
            assertTrue(e.getMessage().contains("holds 2 sequences"), e.getMessage());
            assertThrows(SnapshotException.class, () -> Snapshots.restoreInto(t, two));
            assertEquals(live, store.stats().liveBytes());
            assertEquals(2, store.sequences().size());
        }
    }

    @Test
    void savingSequencesOfTwoStoresOrClosedOnesIsRejected() {
        KvLayout layout = layout(DType.F32);
        try (KvStore a = KvStore.open(layout); KvStore b = KvStore.open(layout);
             Sequence x = a.newSequence(); Sequence y = b.newSequence()) {
            Path file = dir.resolve("bad.kvs");
            assertThrows(io.kvslab.KvArgumentException.class, () -> Snapshots.save(List.of(x, y), file));
            assertThrows(io.kvslab.KvArgumentException.class, () -> Snapshots.save(List.of(x, x), file));
            Sequence z = a.newSequence();
            z.close();
            assertThrows(io.kvslab.KvArgumentException.class, () -> Snapshots.save(z, file));
            assertTrue(Files.notExists(file));
        }
    }
}
