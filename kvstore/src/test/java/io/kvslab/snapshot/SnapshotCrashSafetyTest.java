package io.kvslab.snapshot;

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
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A save that dies halfway never leaves a target file that restores wrongly. */
class SnapshotCrashSafetyTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F16, 4);

    @TempDir
    Path dir;

    private static final class SimulatedCrash extends RuntimeException {
        SimulatedCrash() {
            super("simulated crash in the middle of a save");
        }
    }

    private List<Path> files() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    @Test
    void aFailedSaveLeavesThePreviousSnapshotUntouched() throws IOException {
        Path target = dir.resolve("seq.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence old = store.newSequence();
             Sequence fresh = store.newSequence()) {
            Rows.fill(old, 0, 6);
            Snapshots.save(old, target);
            byte[] before = Files.readAllBytes(target);

            Rows.fill(fresh, 100, 130);
            AtomicReference<Path> seenTemp = new AtomicReference<>();
            assertThrows(SimulatedCrash.class, () -> SnapshotWriter.write(List.of(fresh), target, block -> {
                if (block == 5) {
                    // Mid-save: the data so far sits in a temp file whose header is still zero.
                    try (Stream<Path> s = Files.list(dir)) {
                        Path tmp = s.filter(p -> p.getFileName().toString().contains(".tmp-")).findFirst()
                                .orElseThrow();
                        seenTemp.set(tmp);
                        SnapshotException e = Rejections.assertCorrupt(() -> Snapshots.inspect(tmp));
                        assertTrue(e.getMessage().contains("not a KVSlab snapshot"), e.getMessage());
                    } catch (IOException e) {
                        throw new AssertionError(e);
                    }
                    throw new SimulatedCrash();
                }
            }));
            assertNotNull(seenTemp.get(), "the save wrote through a temp file");
            assertArrayEquals(before, Files.readAllBytes(target), "target untouched");
            assertEquals(List.of(target), files(), "temp file removed");
            try (Sequence r = Snapshots.restore(store, target)) {
                SnapshotRoundTripTest.assertSameContents(old, r);
            }
        }
    }

    @Test
    void aFailedFirstSaveLeavesNoTargetFile() throws IOException {
        Path target = dir.resolve("new.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 9);
            assertThrows(SimulatedCrash.class, () -> SnapshotWriter.write(List.of(s), target, block -> {
                throw new SimulatedCrash();
            }));
            assertTrue(Files.notExists(target));
            assertEquals(List.of(), files());
            // The same save without the crash produces a snapshot that restores.
            Snapshots.save(s, target);
            try (Sequence r = Snapshots.restore(store, target)) {
                SnapshotRoundTripTest.assertSameContents(s, r);
            }
        }
    }

    @Test
    void aSaveIntoAMissingDirectoryFailsCleanly() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 3);
            SnapshotException e = assertThrows(SnapshotException.class,
                    () -> Snapshots.save(s, dir.resolve("no/such/dir/x.kvs")));
            assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        }
    }

    /**
     * A save renames its temporary file over the target, which would replace a device or FIFO entry itself (a fuzz
     * run as root turned /dev/zero into a snapshot file that way): only a regular file, or nothing, is replaced.
     */
    @Test
    void aSaveOverAFifoOrADirectoryIsRefusedAndLeavesThemAlone() throws Exception {
        Path fifo = dir.resolve("pipe");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertEquals(0, mk.waitFor(), "mkfifo is part of coreutils");
        Path sub = Files.createDirectory(dir.resolve("sub"));
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 3);
            for (Path target : List.of(fifo, sub)) {
                SnapshotException e = assertThrows(SnapshotException.class, () -> Snapshots.save(s, target));
                assertTrue(e.getMessage().contains("is not a regular file"), e.getMessage());
                assertEquals(SnapshotException.Reason.IO, e.reason());
            }
            assertTrue(Files.readAttributes(fifo, java.nio.file.attribute.BasicFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS).isOther(), "the FIFO is still a FIFO");
            assertTrue(Files.isDirectory(sub));
            assertEquals(List.of(fifo, sub), files(), "no temporary file is left");
        }
    }
}
