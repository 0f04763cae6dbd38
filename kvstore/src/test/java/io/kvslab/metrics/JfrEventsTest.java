package io.kvslab.metrics;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.CompactionResult;
import io.kvslab.snapshot.Snapshots;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Operations emit their JFR events, with the right fields, into a recording read back from a file. */
class JfrEventsTest {
    static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F32, 4);
    static final long BLOCK = LAYOUT.blockBytes();

    @TempDir
    Path dir;

    @Test
    void compressionCompactionSlabPressureAndSnapshotEventsAreRecorded() throws Exception {
        Path jfr = dir.resolve("kvslab.jfr");
        long acquired;
        long released;
        CompactionResult compaction;
        try (Recording recording = new Recording()) {
            // By name, as an embedder does: the event classes are in an unexported package.
            for (String name : List.of("io.kvslab.Compression", "io.kvslab.Compaction", "io.kvslab.SlabAcquire",
                    "io.kvslab.SlabRelease", "io.kvslab.MemoryPressure", "io.kvslab.Snapshot")) {
                recording.enable(name).withoutThreshold();
            }
            recording.start();

            KvStore store = KvStore.open(LAYOUT, new StoreConfig(40 * BLOCK, 8 * BLOCK));
            Sequence a = store.newSequence();
            Fixture.fill(a, 0, 10);                        // 24 blocks: 3 slabs acquired
            a.keep(1, 0, new int[] {0, 5});              // 10 rows -> 2: frees 2 K + 2 V blocks
            Sequence b = store.newSequence();
            Fixture.fill(b, 0, 3);                         // 8 blocks
            a.close();                                     // sparse slabs: some released, some partly used
            compaction = store.compact();
            // Pressure: fill to the limit, then a handler frees b.
            Sequence c = store.newSequence();
            Fixture.fill(c, 0, 16);                        // 32 blocks: 40 with b's 8
            store.addPressureHandler(p -> {
                b.close();
                return true;
            });
            Fixture.fill(c, 16, 17);
            Snapshots.save(c, dir.resolve("c.kvs"));
            c.close();
            acquired = store.stats().memory().slabsAcquired();
            store.close();
            released = store.stats().memory().slabsReleased();

            recording.stop();
            recording.dump(jfr);
        }
        String thread = Thread.currentThread().getName();
        List<RecordedEvent> events = RecordingFile.readAllEvents(jfr).stream()
                .filter(e -> e.getThread() == null || thread.equals(e.getThread().getJavaName()))
                .toList();

        List<RecordedEvent> compressions = named(events, "io.kvslab.Compression");
        assertEquals(1, compressions.size());
        RecordedEvent c = compressions.get(0);
        assertEquals(1, c.getInt("layer"));
        assertEquals(0, c.getInt("kvHead"));
        assertEquals(10, c.getInt("rowsBefore"));
        assertEquals(2, c.getInt("rowsAfter"));
        assertEquals(2 * 2 * BLOCK, c.getLong("bytesFreed"));

        List<RecordedEvent> compactions = named(events, "io.kvslab.Compaction");
        assertEquals(1, compactions.size());
        assertEquals(compaction.blocksMoved(), compactions.get(0).getLong("blocksMoved"));
        assertEquals(compaction.slabsReleased(), compactions.get(0).getInt("slabsReleased"));

        assertEquals(acquired, named(events, "io.kvslab.SlabAcquire").size());
        List<RecordedEvent> releases = named(events, "io.kvslab.SlabRelease");
        assertEquals(released, releases.size());
        assertTrue(releases.stream().anyMatch(e -> "close".equals(e.getString("reason"))));
        assertEquals(0, releases.get(releases.size() - 1).getLong("reservedBytesAfter"));

        List<RecordedEvent> pressure = named(events, "io.kvslab.MemoryPressure");
        assertEquals(1, pressure.size());
        assertTrue(pressure.get(0).getBoolean("relieved"));
        assertEquals(4 * BLOCK, pressure.get(0).getLong("requestedBytes"));
        assertEquals(4 * BLOCK, pressure.get(0).getLong("shortfallBytes"));
        assertEquals(40 * BLOCK, pressure.get(0).getLong("liveBytesBefore"));
        assertEquals(32 * BLOCK, pressure.get(0).getLong("liveBytesAfter"));

        List<RecordedEvent> snapshots = named(events, "io.kvslab.Snapshot");
        assertEquals(1, snapshots.size());
        assertEquals("save", snapshots.get(0).getString("operation"));
        assertEquals(1, snapshots.get(0).getInt("sequences"));
    }

    private static List<RecordedEvent> named(List<RecordedEvent> events, String name) {
        return events.stream().filter(e -> e.getEventType().getName().equals(name)).toList();
    }
}
