package io.kvslab.internal.ffm;

import io.kvslab.KvSlabException;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * Loads {@code libkvslab.so} (and the OpenBLAS objects beside it) once per JVM. Downcall handles are bound only
 * inside this package ({@link #handle} is package-private): no public method hands out a {@code MethodHandle} or
 * {@code SymbolLookup}, which would launder the restricted {@code Linker.downcallHandle} to any caller. Other
 * internal packages open their own lookup of {@link #libraryFile()}.
 *
 * <p>The shared objects ship as jar resources under {@code /native/linux-x86_64}. They are copied to a fresh temp
 * directory because the dynamic linker needs real files; {@code libkvslab.so} finds OpenBLAS there through its
 * {@code RUNPATH $ORIGIN}. {@code -Dkvslab.native.dir=DIR} loads from a directory instead (for native development).
 */
public final class NativeLibrary {
    /** ABI version the Java bindings expect; {@code kvs_abi_version()} must return it. */
    static final int ABI_VERSION = 1;
    private static final String RESOURCE_DIR = "/native/linux-x86_64/";
    private static final String[] FILES = {"libkvslab.so", "libopenblas.so.0", "libgfortran.so.5", "libquadmath.so.0"};

    private static volatile NativeLibrary instance;

    private final SymbolLookup lookup;
    private final Path file;
    private final Linker linker = Linker.nativeLinker();

    private NativeLibrary(SymbolLookup lookup, Path file) {
        this.lookup = lookup;
        this.file = file;
    }

    /**
     * The loaded and ABI-checked {@code libkvslab.so} (the first call extracts and loads it). Its OpenBLAS
     * objects sit beside it.
     */
    public static Path libraryFile() {
        return get().file;
    }

    /** The loaded library; the first call extracts and loads it. */
    static NativeLibrary get() {
        NativeLibrary lib = instance;
        if (lib == null) {
            synchronized (NativeLibrary.class) {
                lib = instance;
                if (lib == null) {
                    lib = load();
                    instance = lib;
                }
            }
        }
        return lib;
    }

    private static NativeLibrary load() {
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux")
                || !System.getProperty("os.arch", "").matches("amd64|x86_64")) {
            throw new KvSlabException("KVSlab's native kernels are built for linux-x86_64 only; this JVM runs on "
                    + System.getProperty("os.name") + "/" + System.getProperty("os.arch"));
        }
        Path dir;
        String override = System.getProperty("kvslab.native.dir");
        try {
            dir = override != null ? Path.of(override) : extract();
        } catch (IOException e) {
            throw new KvSlabException("cannot extract KVSlab native libraries to a temp directory: " + e.getMessage(), e);
        }
        Path file = dir.resolve("libkvslab.so");
        SymbolLookup lookup = SymbolLookup.libraryLookup(file, Arena.global());
        NativeLibrary lib = new NativeLibrary(lookup, file);
        try {
            int abi = (int) lib.handle("kvs_abi_version", FunctionDescriptor.of(JAVA_INT)).invokeExact();
            if (abi != ABI_VERSION) {
                throw new KvSlabException("libkvslab.so has ABI version " + abi + " but these bindings expect "
                        + ABI_VERSION + "; rebuild the native module");
            }
        } catch (KvSlabException e) {
            throw e;
        } catch (Throwable t) {
            throw new KvSlabException("cannot call kvs_abi_version in libkvslab.so: " + t, t);
        }
        return lib;
    }

    private static Path extract() throws IOException {
        Path dir = Files.createTempDirectory("kvslab-native-");
        // deleteOnExit runs in reverse registration order: register the directory first so it is deleted last.
        dir.toFile().deleteOnExit();
        for (String f : FILES) {
            try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + f)) {
                if (in == null) {
                    throw new IOException("resource " + RESOURCE_DIR + f + " is missing from the classpath "
                            + "(is the kvslab-native jar on it?)");
                }
                Path target = dir.resolve(f);
                Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
                target.toFile().deleteOnExit();
            }
        }
        return dir;
    }

    /** A downcall handle for {@code name}; fails with a clear message if the symbol is missing. */
    MethodHandle handle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = lookup.find(name).orElseThrow(() ->
                new KvSlabException("symbol " + name + " not found in libkvslab.so; rebuild the native module"));
        return linker.downcallHandle(symbol, descriptor, options);
    }
}
