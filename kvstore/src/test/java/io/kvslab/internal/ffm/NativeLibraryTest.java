package io.kvslab.internal.ffm;

import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Extraction cache, CPU check, overrides and the unavailable path of {@link NativeLibrary}. */
class NativeLibraryTest {
    private static final List<String> FLAGS = List.of("--enable-native-access=ALL-UNNAMED");
    private static final String LOG_LINE = "KVSlab native kernels unavailable";

    private static List<String> entries(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    /** Runs the probe in a fresh JVM; returns its stdout and stderr (where the log line goes) together. */
    private static String probe(String... props) throws Exception {
        ForkedJvm.Result r = ForkedJvm.run(NativeLibraryProbe.class, 120, List.of(props));
        assertTrue(r.clean(), r.describe());
        return r.stdout() + r.stderr();
    }

    private static long count(String text, String what) {
        return text.lines().filter(l -> l.contains(what)).count();
    }

    @Test
    void extractsOnceIntoAContentHashedDirectoryAndReusesIt(@TempDir Path root) throws Exception {
        Map<String, String> manifest = NativeLibrary.readManifest();
        assertTrue(manifest.keySet().containsAll(List.of("libkvslab.so", "libopenblas.so.0", "libgfortran.so.5",
                "libquadmath.so.0")), manifest.toString());
        Path dir = NativeLibrary.extract(manifest, root);
        assertEquals(root.resolve(NativeLibrary.versionKey(manifest)), dir);
        assertEquals(List.of(dir.getFileName().toString()), entries(root), "no temp directory left behind");
        for (Map.Entry<String, String> e : manifest.entrySet()) {
            assertEquals(e.getValue(), sha256(dir.resolve(e.getKey())), e.getKey());
        }
        FileTime before = Files.getLastModifiedTime(dir.resolve("libopenblas.so.0"));
        Object inode = Files.getAttribute(dir.resolve("libopenblas.so.0"), "unix:ino");
        assertEquals(dir, NativeLibrary.extract(manifest, root));
        assertEquals(before, Files.getLastModifiedTime(dir.resolve("libopenblas.so.0")), "reused, not rewritten");
        assertEquals(inode, Files.getAttribute(dir.resolve("libopenblas.so.0"), "unix:ino"));
    }

    @Test
    void concurrentExtractionsAgreeOnOneDirectory(@TempDir Path root) throws Exception {
        Map<String, String> manifest = NativeLibrary.readManifest();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Callable<Path>> tasks = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                tasks.add(() -> NativeLibrary.extract(manifest, root));
            }
            Path expected = root.resolve(NativeLibrary.versionKey(manifest));
            for (Future<Path> f : pool.invokeAll(tasks)) {
                assertEquals(expected, f.get());
            }
            assertEquals(List.of(expected.getFileName().toString()), entries(root));
            for (Map.Entry<String, String> e : manifest.entrySet()) {
                assertEquals(e.getValue(), sha256(expected.resolve(e.getKey())), e.getKey());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void concurrentJvmsOnAnEmptyCacheAllLoadOneCopy(@TempDir Path root) throws Exception {
        String prop = "-D" + NativeLibrary.CACHE_DIR_PROPERTY + "=" + root;
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(FLAGS);
        cmd.addAll(List.of(prop, "-cp", System.getProperty("java.class.path"), NativeLibraryProbe.class.getName()));
        List<Process> jvms = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            jvms.add(new ProcessBuilder(cmd).redirectErrorStream(true).start());
        }
        Path dir = root.resolve(NativeLibrary.versionKey(NativeLibrary.readManifest()));
        for (Process p : jvms) {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(2, TimeUnit.MINUTES));
            assertTrue(out.contains("available=true") && out.contains("dir=" + dir), out);
        }
        assertEquals(List.of(dir.getFileName().toString()), entries(root));
    }

    @Test
    void staleTempDirectoriesAreRemovedFreshOnesKept(@TempDir Path root) throws Exception {
        Path stale = Files.createDirectory(root.resolve(".tmp-stale"));
        Files.writeString(stale.resolve("libkvslab.so"), "partial");
        Files.setLastModifiedTime(stale, FileTime.fromMillis(System.currentTimeMillis() - 3_600_000));
        Path fresh = Files.createDirectory(root.resolve(".tmp-fresh")); // another JVM extracting right now
        Path dir = NativeLibrary.extract(NativeLibrary.readManifest(), root);
        assertEquals(List.of(".tmp-fresh", dir.getFileName().toString()), entries(root));
        assertTrue(Files.isDirectory(fresh));
    }

    /** A fake version directory: 64 hex digits (the first ones from {@code tag}), one file, last used {@code ago}. */
    private static Path version(Path root, String tag, Duration ago, long now) throws Exception {
        Path dir = Files.createDirectory(root.resolve((tag + "0".repeat(64)).substring(0, 64)));
        Files.writeString(dir.resolve("libkvslab.so"), tag);
        Files.setLastModifiedTime(dir, FileTime.fromMillis(now - ago.toMillis()));
        return dir;
    }

    @Test
    void supersededVersionsGoBeyondTheMostRecentlyUsedUnlessUsedWithinTheHour(@TempDir Path root) throws Exception {
        long now = System.currentTimeMillis();
        Path current = version(root, "c0", Duration.ofDays(30), now); // just extracted; its own time does not matter
        Path halfHour = version(root, "a1", Duration.ofMinutes(30), now);
        Path twoDays = version(root, "a2", Duration.ofDays(2), now);
        Path fiveDays = version(root, "a3", Duration.ofDays(5), now);
        Path tenDays = version(root, "a4", Duration.ofDays(10), now);
        Path notes = Files.createDirectory(root.resolve("notes")); // not a version: never touched
        Files.setLastModifiedTime(notes, FileTime.fromMillis(now - Duration.ofDays(90).toMillis()));
        Path hexFile = Files.writeString(root.resolve("b".repeat(64)), "a file with a version's name");
        Files.setLastModifiedTime(hexFile, FileTime.fromMillis(now - Duration.ofDays(90).toMillis()));

        NativeLibrary.removeSupersededVersions(root, current.getFileName().toString(), now);

        assertEquals(Stream.of(current, halfHour, twoDays, notes, hexFile).map(p -> p.getFileName().toString())
                .sorted().toList(), entries(root), "kept: current + the 2 most recently used; others are not versions");
        assertFalse(Files.exists(fiveDays));
        assertFalse(Files.exists(tenDays));
        assertEquals("a1", Files.readString(halfHour.resolve("libkvslab.so")), "a kept version is left whole");
    }

    @Test
    void versionsUsedWithinTheHourStayWhateverTheirNumber(@TempDir Path root) throws Exception {
        long now = System.currentTimeMillis();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < NativeLibrary.KEPT_VERSIONS + 3; i++) {
            names.add(version(root, "d" + i, Duration.ofMinutes(10L * i), now).getFileName().toString());
        }
        Path stale = version(root, "e0", NativeLibrary.RECENT_USE.plusMinutes(1), now);
        NativeLibrary.removeSupersededVersions(root, names.get(0), now);
        assertEquals(names.stream().sorted().toList(), entries(root));
        assertFalse(Files.exists(stale), "beyond the count and unused for over an hour");
    }

    @Test
    void extractingANewVersionRemovesSupersededOnesAndReuseMarksTheVersionUsed(@TempDir Path root) throws Exception {
        long now = System.currentTimeMillis();
        Path newest = version(root, "f1", Duration.ofDays(1), now);
        Path older = version(root, "f2", Duration.ofDays(2), now);
        Path oldest = version(root, "f3", Duration.ofDays(3), now);
        Map<String, String> manifest = NativeLibrary.readManifest();
        Path dir = NativeLibrary.extract(manifest, root);
        assertEquals(Stream.of(dir, newest, older).map(p -> p.getFileName().toString()).sorted().toList(),
                entries(root), "the new version and the two most recently used others; no temp directory");
        assertFalse(Files.exists(oldest));

        Files.setLastModifiedTime(dir, FileTime.fromMillis(now - Duration.ofDays(7).toMillis()));
        assertEquals(dir, NativeLibrary.extract(manifest, root));
        long lastUsed = Files.getLastModifiedTime(dir).toMillis();
        assertTrue(lastUsed >= now - 60_000, "a load from the cache records its use: " + FileTime.fromMillis(lastUsed));
        assertTrue(Files.isDirectory(older) && Files.isDirectory(newest), "reuse removes nothing");
    }

    @Test
    void cpuWithoutX86_64v3FlagsIsRefusedNamingWhatIsMissing() throws Exception {
        NativeLibrary.checkCpu(Set.of("sse2", "avx", "avx2", "fma", "f16c", "bmi2"));
        NativeLibrary.Unavailable e = assertThrows(NativeLibrary.Unavailable.class,
                () -> NativeLibrary.checkCpu(Set.of("sse2", "avx", "avx2")));
        assertTrue(e.getMessage().contains("fma, f16c"), e.getMessage());
        e = assertThrows(NativeLibrary.Unavailable.class, () -> NativeLibrary.checkCpu(Set.of("avx", "fma", "f16c")));
        assertTrue(e.getMessage().contains("lacks avx2"), e.getMessage());
        // this machine runs the native tests, so it has them
        NativeLibrary.checkCpu(NativeLibrary.readCpuFlags());
    }

    @Test
    void malformedManifestsAreRejected() {
        String hash = "a".repeat(64);
        assertThrows(NativeLibrary.Unavailable.class, () -> NativeLibrary.parseManifest(hash + "  ../evil.so\n"));
        assertThrows(NativeLibrary.Unavailable.class, () -> NativeLibrary.parseManifest("xyz  libkvslab.so\n"));
        assertThrows(NativeLibrary.Unavailable.class, () -> NativeLibrary.parseManifest(hash + "  libother.so\n"));
    }

    @Test
    void cpuFlagsAreThoseOfTheFirstFlagsLineAsARegexSplitReadsThem() throws Exception {
        // the reference: what the loader did before it scanned by hand
        Set<String> expected = null;
        for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
            if (line.startsWith("flags")) {
                expected = Set.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+"));
                break;
            }
        }
        assertTrue(expected != null && expected.size() > 10, "flags line: " + expected);
        assertEquals(expected, NativeLibrary.readCpuFlags());
    }

    /** The manifest parser accepts exactly the lines the former regular expressions accepted. */
    @Test
    void manifestLinesAreParsedAsTheRegexDid() throws Exception {
        String hash = "0123456789abcdef".repeat(4);
        List<String> lines = List.of(hash + "  libkvslab.so", hash + " *libkvslab.so", hash + "\tlibkvslab.so",
                hash + "   libkvslab.so  ", "  " + hash + "  libkvslab.so", hash + " **libkvslab.so",
                hash + "libkvslab.so", hash + "a  libkvslab.so", hash.toUpperCase() + "  libkvslab.so",
                hash.substring(1) + "  libkvslab.so", hash + "  lib kvslab.so", hash + "  ", hash + " *",
                hash + "  sub/libkvslab.so", hash + "  libkvslab.so+x-1_2.so", hash + " * libkvslab.so");
        for (String line : lines) {
            String[] parts = line.trim().split("\\s+\\*?", 2);
            boolean regexOk = parts.length == 2 && parts[0].matches("[0-9a-f]{64}")
                    && parts[1].matches("[A-Za-z0-9._+-]+");
            String text = line + "\n" + hash + "  libkvslab.so\n";
            if (regexOk) {
                Map<String, String> m = NativeLibrary.parseManifest(line + "\n" + hash + "  other.so\n"
                        + ("libkvslab.so".equals(parts[1]) ? "" : hash + "  libkvslab.so\n"));
                assertEquals(parts[0], m.get(parts[1]), line);
            } else {
                assertThrows(NativeLibrary.Unavailable.class, () -> NativeLibrary.parseManifest(text), line);
            }
        }
    }

    @Test
    void aNewJvmLoadsFromTheCacheAndAKilledOneLeavesNothingBehind(@TempDir Path root) throws Exception {
        String prop = "-D" + NativeLibrary.CACHE_DIR_PROPERTY + "=" + root;
        String first = probe(prop);
        assertTrue(first.contains("available=true again=true"), first);
        Path dir = root.resolve(NativeLibrary.versionKey(NativeLibrary.readManifest()));
        assertTrue(first.contains("dir=" + dir), first);
        FileTime written = Files.getLastModifiedTime(dir.resolve("libkvslab.so"));

        // a second JVM, killed with SIGKILL after loading: the cache is as it was, nothing per JVM remains
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(FLAGS);
        cmd.addAll(List.of(prop, "-cp", System.getProperty("java.class.path"), NativeLibraryProbe.class.getName(), "wait"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null && !line.startsWith("poolThreads=")) {
                assertFalse(line.startsWith("available=false"), line);
            }
            p.destroyForcibly();
            assertTrue(p.waitFor(1, TimeUnit.MINUTES));
        }
        assertEquals(List.of(dir.getFileName().toString()), entries(root));
        assertEquals(written, Files.getLastModifiedTime(dir.resolve("libkvslab.so")), "reused, not rewritten");
    }

    @Test
    void pathOverrideLoadsTheEmbeddersCopy(@TempDir Path root) throws Exception {
        Path dir = NativeLibrary.extract(NativeLibrary.readManifest(), root.resolve("cache"));
        Path shipped = Files.createDirectory(root.resolve("shipped"));
        for (String f : entries(dir)) {
            Files.copy(dir.resolve(f), shipped.resolve(f));
        }
        Path unused = root.resolve("unused-cache");
        String r = probe("-D" + NativeLibrary.PATH_PROPERTY + "=" + shipped.resolve("libkvslab.so"),
                "-D" + NativeLibrary.CACHE_DIR_PROPERTY + "=" + unused);
        assertTrue(r.contains("available=true"), r);
        assertTrue(r.contains("dir=" + shipped), r);
        assertFalse(Files.exists(unused), "nothing extracted when the path is given");

        r = probe("-D" + NativeLibrary.PATH_PROPERTY + "=" + root.resolve("missing"));
        assertTrue(r.contains("available=false"), r);
        assertTrue(r.contains("names no libkvslab.so"), r);
        assertEquals(1, count(r, LOG_LINE), r);
    }

    @Test
    void anUnwritableHomeFallsBackToAPrivateTempDirectory(@TempDir Path root) throws Exception {
        Path homeIsAFile = Files.writeString(root.resolve("home"), "not a directory");
        Path tmp = Files.createDirectory(root.resolve("tmp"));
        String r = probe("-Duser.home=" + homeIsAFile, "-Djava.io.tmpdir=" + tmp);
        Path dir = tmp.resolve("kvslab-" + System.getProperty("user.name")).resolve("native")
                .resolve(NativeLibrary.versionKey(NativeLibrary.readManifest()));
        assertTrue(r.contains("available=true") && r.contains("dir=" + dir), r);
        assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir.getParent().getParent())));

        // a fallback directory others may write to is refused, not used
        Path shared = Files.createDirectory(root.resolve("shared"));
        Files.setPosixFilePermissions(shared, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        IOException e = assertThrows(IOException.class, () -> NativeLibrary.privateDirectory(shared));
        assertTrue(e.getMessage().contains("not a private directory"), e.getMessage());
    }

    @Test
    void disabledOrUnwritableCacheMeansUnavailableWithOneLogLine(@TempDir Path root) throws Exception {
        String r = probe("-D" + NativeLibrary.DISABLE_PROPERTY + "=true");
        assertTrue(r.contains("available=false again=false"), r);
        assertTrue(r.contains("reason=disabled by -Dkvslab.native.disable=true"), r);
        assertEquals(1, count(r, LOG_LINE), r);

        Path notADirectory = Files.writeString(root.resolve("file"), "x");
        r = probe("-D" + NativeLibrary.CACHE_DIR_PROPERTY + "=" + notADirectory.resolve("native"));
        assertTrue(r.contains("available=false"), r);
        assertTrue(r.contains("cannot extract the native library into -Dkvslab.native.cacheDir="), r);
        assertEquals(1, count(r, LOG_LINE), r);
    }

    @Test
    void bundledFilesAreExactlyTheManifest() throws Exception {
        // what the jar carries under native/: the manifest lists every shared object, and nothing else is there
        List<String> resources = new ArrayList<>();
        try (InputStream in = NativeLibrary.class.getResourceAsStream(NativeLibrary.RESOURCE_DIR + "SHA256SUMS")) {
            new String(in.readAllBytes(), StandardCharsets.US_ASCII).lines()
                    .forEach(l -> resources.add(l.substring(66)));
        }
        Path dir = Path.of("target/classes/native/linux-x86_64");
        List<String> files = new ArrayList<>(entries(dir));
        files.remove("SHA256SUMS");
        assertEquals(files, resources.stream().sorted().toList());
    }
}
