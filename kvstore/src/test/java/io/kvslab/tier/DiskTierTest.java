package io.kvslab.tier;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The disk tier: byte-exact storage by key, LRU under a cap, restart, garbage files, concurrency, faults. */
class DiskTierTest {
    @TempDir
    Path dir;

    private static BlockKey key(int i) {
        return new BlockKey(0xfeedL, i);
    }

    private static byte[] value(int i, int n) {
        byte[] b = new byte[n];
        for (int j = 0; j < n; j++) {
            b[j] = (byte) (i * 31 + j * 7);
        }
        return b;
    }

    private long filesBytes() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".kvb")).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    /** The one record file of the tier's directory. */
    private Path onlyRecordFile() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> files = s.filter(p -> p.toString().endsWith(".kvb")).toList();
            assertEquals(1, files.size(), files.toString());
            return files.get(0);
        }
    }

    @Test
    void aRecordFileGrownFifoedOrUndeletableBehindTheTiersBackFailsTypedAndStaysCounted() throws Exception {
        try (DiskTier t = DiskTier.open(dir, 1 << 20)) {
            assertTrue(t.put(key(1), value(1, 100)));
            Path file = onlyRecordFile();
            // grown: not the record written (and reading whatever size it has could exhaust the heap)
            Files.write(file, new byte[4096], java.nio.file.StandardOpenOption.APPEND);
            long failures = t.stats().getFailures();
            assertTrue(t.get(key(1)).isEmpty());
            assertEquals(failures + 1, t.stats().getFailures());
            // a FIFO in its place: opening it for reading would block for ever
            Files.delete(file);
            Process mkfifo = new ProcessBuilder("mkfifo", file.toString()).start();
            assertEquals(0, mkfifo.waitFor());
            assertTimeoutPreemptively(java.time.Duration.ofSeconds(20), () -> assertTrue(t.get(key(1)).isEmpty()));
            // a file the tier cannot delete (here a non-empty directory in its place) is not reported removed
            Files.delete(file);
            Files.createDirectory(file);
            Files.writeString(file.resolve("x"), "x");
            assertFalse(t.remove(key(1)));
            assertEquals(100, t.stats().bytesHeld(), "still on disk: still counted against the cap");
        }
    }

    @Test
    void putGetRemoveAreByteExact() {
        try (DiskTier t = DiskTier.open(dir, 1 << 20)) {
            assertEquals("disk", t.name());
            assertTrue(t.put(key(1), value(1, 100)));
            assertTrue(t.put(key(2), value(2, 0)));
            assertArrayEquals(value(1, 100), t.get(key(1)).orElseThrow());
            assertArrayEquals(new byte[0], t.get(key(2)).orElseThrow());
            assertTrue(t.put(key(1), value(9, 50)));   // replaces
            assertArrayEquals(value(9, 50), t.get(key(1)).orElseThrow());
            assertEquals(Optional.empty(), t.get(key(3)));
            assertTrue(t.remove(key(1)));
            assertFalse(t.remove(key(1)));
            assertEquals(Optional.empty(), t.get(key(1)));
            TierStats s = t.stats();
            assertEquals(3, s.puts());
            assertEquals(3, s.hits());
            assertEquals(2, s.misses());
            assertEquals(1, s.removes());
            assertEquals(150, s.bytesWritten());
            assertEquals(150, s.bytesRead());
            assertEquals(0, s.bytesHeld());
            assertEquals(1, t.records());
        }
    }

    @Test
    void theCapEvictsTheLeastRecentlyUsed() throws IOException {
        try (DiskTier t = DiskTier.open(dir, 300)) {
            t.put(key(1), value(1, 100));
            t.put(key(2), value(2, 100));
            t.put(key(3), value(3, 100));
            t.get(key(1));                      // order of use now: 2, 3, 1
            assertTrue(t.put(key(4), value(4, 100)));   // evicts 2
            assertEquals(Optional.empty(), t.get(key(2)));
            assertTrue(t.get(key(3)).isPresent());      // order: 1, 4, 3
            assertTrue(t.put(key(5), value(5, 150)));   // needs 150 more: evicts 1 and 4
            assertEquals(Optional.empty(), t.get(key(1)));
            assertEquals(Optional.empty(), t.get(key(4)));
            assertArrayEquals(value(3, 100), t.get(key(3)).orElseThrow());
            assertArrayEquals(value(5, 150), t.get(key(5)).orElseThrow());
            assertEquals(3, t.evictions());
            assertEquals(250, t.stats().bytesHeld());
            assertEquals(250, filesBytes(), "evicted files are deleted");
            assertFalse(t.put(key(6), value(6, 301)), "a record larger than the cap is declined");
            assertEquals(1, t.stats().putFailures());
            assertEquals(250, t.stats().bytesHeld(), "a declined put evicts nothing");
        }
    }

    @Test
    void reopeningReindexesIgnoresGarbageAndDropsStaleTemporaries() throws IOException {
        try (DiskTier t = DiskTier.open(dir, 1 << 20)) {
            t.put(key(1), value(1, 10));
            t.put(key(2), value(2, 20));
        }
        Files.writeString(dir.resolve("notes.txt"), "not a record");
        Files.writeString(dir.resolve("zz" + "0".repeat(30) + ".kvb"), "bad hex name");
        Files.createDirectory(dir.resolve("0".repeat(32) + ".kvb"));
        Path stale = dir.resolve(key(7).hex() + ".00000000000000ab.tmp");
        Files.write(stale, value(7, 5));
        try (DiskTier t = DiskTier.open(dir, 1 << 20)) {
            assertEquals(2, t.records());
            assertEquals(30, t.stats().bytesHeld());
            assertArrayEquals(value(1, 10), t.get(key(1)).orElseThrow());
            assertArrayEquals(value(2, 20), t.get(key(2)).orElseThrow());
            assertFalse(Files.exists(stale), "our own stale temporary file is removed");
            assertTrue(Files.exists(dir.resolve("notes.txt")), "foreign files are left alone");
        }
    }

    @Test
    void reopeningWithASmallerCapEvictsTheOldest() throws IOException {
        try (DiskTier t = DiskTier.open(dir, 1 << 20)) {
            for (int i = 0; i < 4; i++) {
                t.put(key(i), value(i, 100));
                Files.setLastModifiedTime(dir.resolve(key(i).hex() + ".kvb"),
                        java.nio.file.attribute.FileTime.fromMillis(1_000_000L * (i + 1)));
            }
        }
        try (DiskTier t = DiskTier.open(dir, 250)) {
            assertEquals(2, t.records());
            assertTrue(t.get(key(2)).isPresent());
            assertTrue(t.get(key(3)).isPresent());
            assertEquals(200, filesBytes());
        }
    }

    @Test
    void oneTierPerDirectory() {
        try (DiskTier t = DiskTier.open(dir, 100)) {
            assertThrows(ConcurrentUseException.class, () -> DiskTier.open(dir, 100));
        }
        DiskTier.open(dir, 100).close();   // released on close
    }

    @Test
    void callerMistakesThrowAndFaultsDoNot() throws IOException {
        assertThrows(KvArgumentException.class, () -> DiskTier.open(dir, 0));
        assertThrows(KvArgumentException.class, () -> DiskTier.open(null, 10));
        Path file = Files.writeString(dir.resolve("plain"), "x");
        assertThrows(KvArgumentException.class, () -> DiskTier.open(file, 10));
        DiskTier t = DiskTier.open(dir.resolve("sub"), 1000);
        assertThrows(KvArgumentException.class, () -> t.put(null, new byte[1]));
        assertThrows(KvArgumentException.class, () -> t.put(key(1), null));
        assertThrows(KvArgumentException.class, () -> t.get(null));
        t.put(key(1), value(1, 40));
        // Deleted behind the tier's back: a miss, and forgotten.
        Files.delete(dir.resolve("sub").resolve(key(1).hex() + ".kvb"));
        assertEquals(Optional.empty(), t.get(key(1)));
        assertEquals(0, t.stats().bytesHeld());
        // Truncated behind its back: the short bytes come back (the record checks reject them).
        t.put(key(2), value(2, 40));
        Path f2 = dir.resolve("sub").resolve(key(2).hex() + ".kvb");
        Files.write(f2, Arrays.copyOf(value(2, 40), 7));
        assertArrayEquals(Arrays.copyOf(value(2, 40), 7), t.get(key(2)).orElseThrow());
        t.close();
        t.close();
        assertThrows(ClosedException.class, () -> t.get(key(2)));
        assertThrows(ClosedException.class, () -> t.put(key(3), new byte[1]));
    }

    @Test
    void concurrentPutsGetsAndRemovesKeepTheIndexTrue() throws Exception {
        int threads = 4;
        int keys = 40;
        try (DiskTier t = DiskTier.open(dir, 20 * 64);
             ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            ConcurrentHashMap<Integer, Boolean> bad = new ConcurrentHashMap<>();
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < threads; w++) {
                int seed = w;
                done.add(pool.submit(() -> {
                    java.util.Random r = new java.util.Random(seed);
                    for (int i = 0; i < 400; i++) {
                        int k = r.nextInt(keys);
                        switch (r.nextInt(3)) {
                            case 0 -> t.put(key(k), value(k, 64));
                            case 1 -> t.get(key(k)).ifPresent(v -> {
                                if (!Arrays.equals(v, value(k, 64))) {
                                    bad.put(k, true);   // a torn or foreign value
                                }
                            });
                            default -> t.remove(key(k));
                        }
                    }
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            assertTrue(bad.isEmpty(), "every value read was exactly a value written: " + bad.keySet());
            long held = t.stats().bytesHeld();
            assertTrue(held <= 20 * 64, "held " + held);
            assertEquals(held, filesBytes(), "the index counts exactly the files on disk");
            assertEquals(held / 64, t.records());
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(0, s.filter(p -> p.toString().endsWith(".tmp")).count(), "no temporary file left");
        }
    }
}
