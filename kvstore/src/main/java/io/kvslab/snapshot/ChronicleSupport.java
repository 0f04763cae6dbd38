package io.kvslab.snapshot;

import java.util.ArrayList;
import java.util.List;

/**
 * Checks, once per JVM, that snapshots can run: Chronicle Bytes is on the path and java.base opens and exports
 * what it needs to Chronicle's module. Without the check a missing flag surfaces as Chronicle's
 * {@code java.lang.AssertionError} (or an {@code IORuntimeException}) in the middle of a save.
 *
 * <p>The minimum, tried with Chronicle Bytes 2026.4 on JDK 25: {@code --add-opens=java.base/java.lang.reflect} and
 * {@code --add-exports=java.base/sun.nio.ch} (either one missing fails every mapping).
 * {@code --add-exports=java.base/jdk.internal.ref} only silences a warning and is not required.
 */
final class ChronicleSupport {
    /** A Chronicle Bytes class snapshots use, and the chronicle-core class that maps files. */
    static final String BYTES_CLASS = "net.openhft.chronicle.bytes.MappedBytes";
    static final String CORE_CLASS = "net.openhft.chronicle.core.OS";

    private static volatile boolean checked;

    private ChronicleSupport() {}

    /** Throws a {@link SnapshotException.Reason#PREREQUISITE} SnapshotException unless Chronicle is present and has its flags. */
    static void require() {
        if (checked) {
            return;
        }
        ClassLoader loader = ChronicleSupport.class.getClassLoader();
        Class<?> core;
        try {
            Class.forName(BYTES_CLASS, false, loader);
            core = Class.forName(CORE_CLASS, false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            boolean modulePath = ChronicleSupport.class.getModule().isNamed();
            throw SnapshotException.prerequisite("snapshots need Chronicle Bytes, an optional dependency of "
                    + "kvslab-core: add net.openhft:chronicle-bytes (the version kvslab-core was built with) to the "
                    + "application's dependencies (" + e.getMessage() + " is missing)" + (modulePath ? "; on the "
                    + "module path also resolve it with --add-modules chronicle.bytes,org.slf4j,jdk.unsupported "
                    + "(kvslab-core requires it only statically)" : ""),
                    modulePath ? List.of("--add-modules=chronicle.bytes,org.slf4j,jdk.unsupported") : List.of());
        }
        Module chronicle = core.getModule();
        String target = chronicle.isNamed() ? chronicle.getName() : "ALL-UNNAMED";
        Module base = Object.class.getModule();
        List<String> missing = new ArrayList<>();
        if (!base.isOpen("java.lang.reflect", chronicle)) {
            missing.add("--add-opens=java.base/java.lang.reflect=" + target);
        }
        if (!base.isExported("sun.nio.ch", chronicle)) {
            missing.add("--add-exports=java.base/sun.nio.ch=" + target);
        }
        if (chronicle.isNamed()) {
            // named Chronicle modules need these two at run time, which nothing else makes the JVM resolve: without
            // them a save dies with NoClassDefFoundError (org/slf4j/Logger, sun/misc/SignalHandler)
            ModuleLayer layer = chronicle.getLayer() == null ? ModuleLayer.boot() : chronicle.getLayer();
            List<String> unresolved = new ArrayList<>();
            for (String m : List.of("org.slf4j", "jdk.unsupported")) {
                if (layer.findModule(m).isEmpty()) {
                    unresolved.add(m);
                }
            }
            if (!unresolved.isEmpty()) {
                missing.add("--add-modules=" + String.join(",", unresolved));
            }
        }
        if (!missing.isEmpty()) {
            throw SnapshotException.prerequisite("snapshots (Chronicle Bytes) need these JVM flags, missing "
                    + "from this JVM: " + String.join(" ", missing), missing);
        }
        checked = true;
    }
}
