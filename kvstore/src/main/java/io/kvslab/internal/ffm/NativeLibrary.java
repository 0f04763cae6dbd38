package io.kvslab.internal.ffm;

import io.kvslab.KvSlabException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Finds, extracts and loads {@code libkvslab.so} (and the OpenBLAS objects beside it) once per JVM.
 *
 * <p><b>Where the library comes from.</b> The shared objects ship as jar resources under
 * {@code /native/linux-x86_64}, with a {@code SHA256SUMS} manifest written by the native build. The dynamic linker
 * needs real files, so they are extracted once per library version into a content-addressed cache directory,
 * {@code ${user.home}/.cache/kvslab/native/<sha256 of the manifest>/} (override the root with
 * {@value #CACHE_DIR_PROPERTY}; if the home directory is not writable, {@code ${java.io.tmpdir}/kvslab-${user.name}/native},
 * a directory that must be private to the user). Extraction writes a temp directory beside it and renames it into place atomically, so
 * concurrent JVMs never see a half-written library and later starts reuse it without copying; nothing is per JVM, so a
 * killed JVM leaves nothing behind (an extraction cut short leaves a {@code .tmp-*} directory that the next start
 * removes). Extracting a new version removes the old ones beyond the {@value #KEPT_VERSIONS} most recently used,
 * except any used within the last hour. {@value #PATH_PROPERTY} loads a {@code libkvslab.so} the embedder ships instead (a file, or a directory
 * holding it; OpenBLAS is found beside it through its {@code RUNPATH $ORIGIN}).
 *
 * <p><b>When it cannot load.</b> The kernels are built for x86-64-v3, so the CPU is checked first (AVX2, FMA and F16C
 * in {@code /proc/cpuinfo}): running them elsewhere would die with SIGILL. If the OS, architecture or CPU does not fit,
 * the files cannot be extracted, the JVM denies native access, or {@value #DISABLE_PROPERTY}{@code =true} is set,
 * {@link #isAvailable()} is false, {@link #unavailableReason()} says why, and one line is logged (logger
 * {@code io.kvslab.native}); callers are expected to take a Java path instead.
 *
 * <p>No method hands out a symbol or a downcall handle outside this package: the bindings live here and expose typed,
 * fixed-signature calls only (see {@link KernelDowncalls}).
 */
public final class NativeLibrary {
    /** System property: root of the extraction cache (default {@code ${user.home}/.cache/kvslab/native}). */
    public static final String CACHE_DIR_PROPERTY = "kvslab.native.cacheDir";
    /** System property: a {@code libkvslab.so} (or a directory holding it) to load instead of the bundled one. */
    public static final String PATH_PROPERTY = "kvslab.native.path";
    /** System property: {@code true} makes the library unavailable (to test the Java paths). */
    public static final String DISABLE_PROPERTY = "kvslab.native.disable";

    /** ABI version the Java bindings expect; {@code kvs_abi_version()} must return it. */
    static final int ABI_VERSION = 10;
    static final String RESOURCE_DIR = "/native/linux-x86_64/";
    static final String MANIFEST = "SHA256SUMS";
    static final String LIBRARY = "libkvslab.so";
    /** CPU flags (as /proc/cpuinfo spells them) that x86-64-v3 code needs beyond the x86-64 baseline. */
    static final List<String> REQUIRED_CPU_FLAGS = List.of("avx2", "fma", "f16c");
    /** A {@code .tmp-*} extraction directory older than this belongs to a JVM that died while extracting. */
    private static final Duration STALE_TEMP = Duration.ofMinutes(10);
    /**
     * Library versions a cache root keeps, the one just extracted included: the others most recently used stay so
     * that switching between a few versions (two applications, a rollback) does not copy 40 MB each time.
     */
    static final int KEPT_VERSIONS = 3;
    /** A version used more recently than this is never removed: another JVM may be loading it right now. */
    static final Duration RECENT_USE = Duration.ofHours(1);

    private static final System.Logger LOG = System.getLogger("io.kvslab.native");

    private final SymbolLookup lookup;
    private final Linker linker = Linker.nativeLinker();
    private final Path directory;
    private final Path file;

    private NativeLibrary(SymbolLookup lookup, Path file) {
        this.lookup = lookup;
        this.file = file;
        this.directory = file.getParent();
    }

    /**
     * The loaded, ABI-checked {@code libkvslab.so} (the first call loads it; fails when it is unavailable). Other
     * internal packages bind their own fixed downcalls from a private lookup of it: no handle or lookup is handed
     * out from here.
     */
    public static Path libraryFile() {
        return get().file;
    }

    /** The outcome of the one load attempt of this JVM (holder idiom: computed on first use, thread-safe). */
    private static final class Outcome {
        static final NativeLibrary LIBRARY;
        static final String REASON;

        static {
            NativeLibrary lib = null;
            String reason;
            try {
                lib = load();
                reason = null;
            } catch (Unavailable e) {
                reason = e.getMessage();
            } catch (RuntimeException e) {
                // never let a surprise turn into an ExceptionInInitializerError for every later caller
                reason = "unexpected failure while loading: " + e;
            }
            LIBRARY = lib;
            REASON = reason;
            if (reason != null) {
                boolean disabled = Boolean.getBoolean(DISABLE_PROPERTY);
                LOG.log(disabled ? System.Logger.Level.INFO : System.Logger.Level.WARNING,
                        "KVSlab native kernels unavailable: " + reason);
            }
        }
    }

    /** Why loading failed: turned into {@link #unavailableReason()}. */
    static final class Unavailable extends Exception {
        Unavailable(String message) {
            super(message, null, false, false);
        }
    }

    /** Whether the native kernels are loaded (the first call tries to load them). */
    public static boolean isAvailable() {
        return Outcome.LIBRARY != null;
    }

    /** Why the native kernels are not available, or {@code null} if they are. */
    public static String unavailableReason() {
        return Outcome.REASON;
    }

    /** The loaded library; fails with the reason when it is unavailable. */
    static NativeLibrary get() {
        NativeLibrary lib = Outcome.LIBRARY;
        if (lib == null) {
            throw new KvSlabException("KVSlab's native library is unavailable: " + Outcome.REASON);
        }
        return lib;
    }

    /** The directory the library was loaded from (the cache entry, or the {@value #PATH_PROPERTY} directory). */
    static Path directory() {
        return get().directory;
    }

    /** A downcall handle for {@code name}; package-private: only the typed bindings of this package use it. */
    MethodHandle handle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = lookup.find(name).orElseThrow(() ->
                new KvSlabException("symbol " + name + " not found in libkvslab.so; rebuild the native module"));
        return linker.downcallHandle(symbol, descriptor, options);
    }

    // ---------------------------------------------------------------- loading

    private static NativeLibrary load() throws Unavailable {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            throw new Unavailable("disabled by -D" + DISABLE_PROPERTY + "=true");
        }
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "");
        if (!os.toLowerCase().contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            throw new Unavailable("the native kernels are built for linux-x86_64 only; this JVM runs on "
                    + os + "/" + arch);
        }
        checkCpu(readCpuFlags());
        Path file = locate();
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(file, Arena.global());
        } catch (IllegalCallerException e) {
            throw new Unavailable("the JVM denies native access; start it with --enable-native-access=ALL-UNNAMED "
                    + "(class path) or --enable-native-access=io.kvslab (module path): " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new Unavailable("cannot load " + file + ": " + e.getMessage());
        }
        NativeLibrary lib = new NativeLibrary(lookup, file);
        int abi;
        try {
            abi = (int) lib.handle("kvs_abi_version", FunctionDescriptor.of(JAVA_INT)).invokeExact();
        } catch (Throwable t) {
            throw new Unavailable("cannot call kvs_abi_version in " + file + ": " + t);
        }
        if (abi != ABI_VERSION) {
            throw new Unavailable(file + " has ABI version " + abi + " but these bindings expect " + ABI_VERSION
                    + "; rebuild the native module");
        }
        return lib;
    }

    /**
     * The {@code flags} of the first processor in /proc/cpuinfo. Scanned by hand: this runs on every start of every
     * JVM that loads the kernels, and a first use of regex and line decoding costs more than the scan.
     */
    static Set<String> readCpuFlags() throws Unavailable {
        try {
            String text = new String(Files.readAllBytes(Path.of("/proc/cpuinfo")), StandardCharsets.US_ASCII);
            for (int line = 0; line < text.length(); ) {
                int end = text.indexOf('\n', line);
                end = end < 0 ? text.length() : end;
                int colon = text.indexOf(':', line);
                if (text.startsWith("flags", line) && colon >= 0 && colon < end) {
                    Set<String> flags = new HashSet<>();
                    int i = colon + 1;
                    while (i < end) {
                        while (i < end && Character.isWhitespace(text.charAt(i))) {
                            i++;
                        }
                        int start = i;
                        while (i < end && !Character.isWhitespace(text.charAt(i))) {
                            i++;
                        }
                        if (i > start) {
                            flags.add(text.substring(start, i));
                        }
                    }
                    return Set.copyOf(flags);
                }
                line = end + 1;
            }
        } catch (IOException | RuntimeException e) {
            throw new Unavailable("cannot read the CPU flags from /proc/cpuinfo (" + e + "); "
                    + "not loading x86-64-v3 code on an unknown CPU");
        }
        throw new Unavailable("/proc/cpuinfo has no flags line; not loading x86-64-v3 code on an unknown CPU");
    }

    /** Fails unless the CPU has every flag of {@link #REQUIRED_CPU_FLAGS}. */
    static void checkCpu(Set<String> flags) throws Unavailable {
        List<String> missing = new ArrayList<>();
        for (String f : REQUIRED_CPU_FLAGS) {
            if (!flags.contains(f)) {
                missing.add(f);
            }
        }
        if (!missing.isEmpty()) {
            throw new Unavailable("the CPU lacks " + String.join(", ", missing)
                    + " (the native kernels are built for x86-64-v3: AVX2, FMA, F16C)");
        }
    }

    /** The libkvslab.so to load: {@value #PATH_PROPERTY}, or the cached extraction of the bundled one. */
    private static Path locate() throws Unavailable {
        String override = System.getProperty(PATH_PROPERTY);
        if (override != null && !override.isBlank()) {
            Path p = Path.of(override);
            Path file = Files.isDirectory(p) ? p.resolve(LIBRARY) : p;
            if (!Files.isRegularFile(file)) {
                throw new Unavailable("-D" + PATH_PROPERTY + "=" + override + " names no libkvslab.so");
            }
            return file.toAbsolutePath();
        }
        Map<String, String> manifest = readManifest();
        String cacheRoot = System.getProperty(CACHE_DIR_PROPERTY);
        if (cacheRoot != null && !cacheRoot.isBlank()) {
            Path root = Path.of(cacheRoot).toAbsolutePath();
            try {
                return extract(manifest, root).resolve(LIBRARY);
            } catch (IOException e) {
                throw new Unavailable("cannot extract the native library into -D" + CACHE_DIR_PROPERTY + "="
                        + root + " (" + e + ")");
            }
        }
        Path home = Path.of(System.getProperty("user.home"), ".cache", "kvslab", "native").toAbsolutePath();
        try {
            return extract(manifest, home).resolve(LIBRARY);
        } catch (IOException homeFailed) {
            // e.g. a read-only home in a container: a private directory under the temp directory instead
            Path tmp = Path.of(System.getProperty("java.io.tmpdir"), "kvslab-" + System.getProperty("user.name"))
                    .toAbsolutePath();
            try {
                privateDirectory(tmp);
                return extract(manifest, tmp.resolve("native")).resolve(LIBRARY);
            } catch (IOException tmpFailed) {
                throw new Unavailable("cannot extract the native library into " + home + " (" + homeFailed
                        + ") nor " + tmp + " (" + tmpFailed + "); set -D" + CACHE_DIR_PROPERTY
                        + "=DIR to a writable directory");
            }
        }
    }

    /**
     * Creates {@code dir} (mode 700) or checks an existing one: in a shared temp directory another user could
     * otherwise plant a library for us to load, so it must be ours and writable by nobody else.
     */
    static void privateDirectory(Path dir) throws IOException {
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (FileAlreadyExistsException exists) {
            // checked below
        }
        String me = System.getProperty("user.name");
        String owner = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName();
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) || !owner.equals(me)
                || perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IOException(dir + " is not a private directory of " + me + " (owner " + owner + ", " 
                    + PosixFilePermissions.toString(perms) + ")");
        }
    }

    /** The bundled files and their SHA-256 (hex) from the {@code SHA256SUMS} resource, in manifest order. */
    static Map<String, String> readManifest() throws Unavailable {
        String text;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + MANIFEST)) {
            if (in == null) {
                throw new Unavailable("resource " + RESOURCE_DIR + MANIFEST + " is missing: the kvslab-core jar "
                        + "on the class path has no native library in it");
            }
            text = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new Unavailable("cannot read " + RESOURCE_DIR + MANIFEST + ": " + e);
        }
        return parseManifest(text);
    }

    static Map<String, String> parseManifest(String text) throws Unavailable {
        Map<String, String> files = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            // sha256sum format: 64 hex digits, two spaces (or " *"), file name (checked by hand, not by regex: every
            // start reads the manifest)
            String t = line.trim();
            int i = 64;
            boolean ok = t.length() > i && isLowerHex(t, 0, i) && Character.isWhitespace(t.charAt(i));
            while (ok && i < t.length() && Character.isWhitespace(t.charAt(i))) {
                i++;
            }
            if (ok && i < t.length() && t.charAt(i) == '*') {
                i++;
            }
            String name = ok ? t.substring(i) : "";
            if (!ok || !isFileName(name)) {
                throw new Unavailable("malformed line in " + RESOURCE_DIR + MANIFEST + ": " + line);
            }
            files.put(name, t.substring(0, 64));
        }
        if (!files.containsKey(LIBRARY)) {
            throw new Unavailable(RESOURCE_DIR + MANIFEST + " does not list " + LIBRARY);
        }
        return files;
    }

    private static boolean isLowerHex(String s, int from, int to) {
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
                return false;
            }
        }
        return true;
    }

    /** Non-empty, of {@code [A-Za-z0-9._+-]} only (so no path separators). */
    private static boolean isFileName(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_'
                    || c == '+' || c == '-')) {
                return false;
            }
        }
        return true;
    }

    /** The cache entry name: SHA-256 of the manifest, i.e. of every file's name and content hash. */
    static String versionKey(Map<String, String> manifest) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            manifest.forEach((name, hash) -> md.update((hash + "  " + name + "\n").getBytes(StandardCharsets.US_ASCII)));
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is a required JDK algorithm", e);
        }
    }

    /**
     * The cache directory holding every manifest file, extracting it if it is not there yet. Safe for concurrent
     * JVMs: each writes its own temp directory and renames it into place; a loser of the race uses the winner's.
     */
    static Path extract(Map<String, String> manifest, Path root) throws IOException, Unavailable {
        Path target = root.resolve(versionKey(manifest));
        if (Files.isDirectory(root)) {
            removeStaleTemps(root);
        }
        markUsed(target);
        if (complete(target, manifest)) {
            return target;
        }
        Files.createDirectories(root);
        Path temp = root.resolve(".tmp-" + UUID.randomUUID());
        Files.createDirectory(temp);
        try {
            for (Map.Entry<String, String> e : manifest.entrySet()) {
                copyVerified(e.getKey(), e.getValue(), temp.resolve(e.getKey()));
            }
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
                // a new version arrived (an upgrade, a rebuild): older ones nobody uses are 40 MB each
                removeSupersededVersions(root, target.getFileName().toString(), System.currentTimeMillis());
            } catch (IOException raced) {
                // another JVM renamed its copy first: rename(2) onto a non-empty directory fails (ENOTEMPTY, which
                // the JDK reports as a plain FileSystemException); its copy is as good as ours
                if (!complete(target, manifest)) {
                    throw raced;
                }
            }
        } finally {
            deleteTree(temp);
        }
        return target;
    }

    /** Whether {@code dir} holds every manifest file (sizes of a finished extraction; contents were verified then). */
    private static boolean complete(Path dir, Map<String, String> manifest) {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        for (String name : manifest.keySet()) {
            if (!Files.isRegularFile(dir.resolve(name))) {
                return false;
            }
        }
        return true;
    }

    /** Copies one resource to {@code target}, failing unless its SHA-256 is the manifest's. */
    private static void copyVerified(String name, String expectedSha256, Path target) throws IOException, Unavailable {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is a required JDK algorithm", e);
        }
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + name)) {
            if (in == null) {
                throw new Unavailable("resource " + RESOURCE_DIR + name + " listed in " + MANIFEST + " is missing");
            }
            try (OutputStream out = new DigestOutputStream(Files.newOutputStream(target,
                    StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), md)) {
                in.transferTo(out);
            }
        }
        String actual = HexFormat.of().formatHex(md.digest());
        if (!actual.equals(expectedSha256)) {
            throw new Unavailable("resource " + RESOURCE_DIR + name + " has SHA-256 " + actual + " but " + MANIFEST
                    + " says " + expectedSha256 + " (a corrupt or mixed-up jar)");
        }
    }

    /** Deletes {@code .tmp-*} directories left by JVMs killed while extracting (older than a few minutes). */
    private static void removeStaleTemps(Path root) {
        FileTime cutoff = FileTime.fromMillis(System.currentTimeMillis() - STALE_TEMP.toMillis());
        List<Path> stale = new ArrayList<>();
        // a plain listing and startsWith: a glob pattern would compile a regex on every start
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path p : entries) {
                if (p.getFileName().toString().startsWith(".tmp-") && Files.getLastModifiedTime(p).compareTo(cutoff) < 0) {
                    stale.add(p);
                }
            }
        } catch (IOException e) {
            return; // best effort: a leftover costs disk space, not correctness
        }
        stale.forEach(NativeLibrary::deleteTree);
    }

    /**
     * Records a use of a version's directory in its modification time, which {@link #removeSupersededVersions} reads
     * as "last used". A read-only cache cannot record it: its versions then look unused and may be removed by a JVM
     * that can write there, which only costs a later extraction.
     */
    private static void markUsed(Path versionDir) {
        try {
            Files.setLastModifiedTime(versionDir, FileTime.fromMillis(System.currentTimeMillis()));
        } catch (IOException | RuntimeException e) {
            // absent (first extraction) or not ours to change: see above
        }
    }

    /**
     * Removes the version directories of {@code root} (names of 64 hex digits) beyond the {@link #KEPT_VERSIONS} most
     * recently used, {@code current} counted first, unless used within {@link #RECENT_USE} of {@code nowMillis}. Each
     * goes by an atomic rename to a {@code .tmp-*} name first, so a JVM looking for it finds it whole or not at all,
     * and a removal cut short is finished by {@link #removeStaleTemps}. A JVM that already loaded a removed version
     * keeps running: the files stay mapped until it exits.
     */
    static void removeSupersededVersions(Path root, String current, long nowMillis) {
        record Version(Path dir, long lastUsed) { }
        List<Version> others = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path p : entries) {
                String name = p.getFileName().toString();
                if (name.length() == 64 && isLowerHex(name, 0, 64) && !name.equals(current)
                        && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                    others.add(new Version(p, Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toMillis()));
                }
            }
        } catch (IOException e) {
            return; // best effort, see removeStaleTemps
        }
        others.sort(Comparator.comparingLong(Version::lastUsed).reversed());
        long recent = nowMillis - RECENT_USE.toMillis();
        for (int i = KEPT_VERSIONS - 1; i < others.size(); i++) {
            Version v = others.get(i);
            if (v.lastUsed() >= recent) {
                continue;
            }
            Path doomed = root.resolve(".tmp-" + UUID.randomUUID());
            try {
                Files.move(v.dir(), doomed, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                continue; // another JVM moved or removed it first
            }
            deleteTree(doomed);
        }
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // best effort, see removeStaleTemps
        }
    }
}
