package io.kvslab.snapshot;

import io.kvslab.ConcurrentUseException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A sequence mutated while it is being saved: the save reads its tables and rows one (layer, head) or block at a
 * time, so it would write a mix of two states. It fails typed instead, and leaves the previous file alone. The
 * mutation runs from the writer's progress seam, between two block reads, where another thread's would land.
 */
class SnapshotConcurrentMutationTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F16, 4);

    @TempDir
    Path dir;

    private List<Path> files() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    /** Saves {@code saved} over an existing snapshot while {@code mutation} runs after the second block. */
    private ConcurrentUseException saveWhile(KvStore store, Sequence saved, Consumer<Sequence> mutation)
            throws IOException {
        Path target = dir.resolve("seq.kvs");
        try (Sequence previous = store.newSequence()) {
            Rows.fill(previous, 0, 6);
            Snapshots.save(previous, target);
        }
        byte[] before = Files.readAllBytes(target);
        ConcurrentUseException e = assertThrows(ConcurrentUseException.class,
                () -> SnapshotWriter.write(List.of(saved), target, block -> {
                    if (block == 1) {
                        mutation.accept(saved);
                    }
                }));
        assertTrue(e.getMessage().contains("sequence " + saved.id()) && e.getMessage().contains("nothing was written"),
                e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(target), "the previous snapshot is untouched");
        assertEquals(List.of(target), files(), "no temp file left");
        return e;
    }

    @Test
    void anAppendDuringTheSaveIsRefusedAndTheSaveAfterItIsWhole() throws IOException {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 13);
            ConcurrentUseException e = saveWhile(store, s, seq -> Rows.fill(seq, 13, 14));
            assertTrue(e.getMessage().contains("was modified"), e.getMessage());
            Path again = dir.resolve("again.kvs");
            Snapshots.save(s, again);
            try (Sequence r = Snapshots.restore(store, again)) {
                SnapshotRoundTripTest.assertSameContents(s, r);
                assertEquals(14, r.positions(0, 0).length);
            }
        }
    }

    @Test
    void anEvictionDuringTheSaveIsRefused() throws IOException {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 13);
            saveWhile(store, s, seq -> seq.removePositions(0, 5));
            assertEquals(8, s.positions(1, 1).length, "the eviction itself went through");
        }
    }

    @Test
    void aCloseDuringTheSaveIsRefusedNamingIt() throws IOException {
        try (KvStore store = KvStore.open(LAYOUT)) {
            Sequence s = store.newSequence();
            Rows.fill(s, 0, 13);
            ConcurrentUseException e = saveWhile(store, s, Sequence::close);
            assertTrue(e.getMessage().contains("was closed"), e.getMessage());
            assertEquals(0, store.metrics().liveBlocks(), "the closed sequence's blocks were freed");
        }
    }

    @Test
    void mutatingAnotherSequenceDoesNotDisturbTheSave() throws IOException {
        Path target = dir.resolve("seq.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence();
             Sequence other = store.newSequence()) {
            Rows.fill(s, 0, 13);
            Rows.fill(other, 0, 5);
            SnapshotWriter.write(List.of(s), target, block -> Rows.fill(other, 5 + block, 6 + block));
            try (Sequence r = Snapshots.restore(store, target)) {
                SnapshotRoundTripTest.assertSameContents(s, r);
            }
        }
    }
}
