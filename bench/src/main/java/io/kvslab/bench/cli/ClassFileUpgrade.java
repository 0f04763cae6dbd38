package io.kvslab.bench.cli;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.lang.constant.ClassDesc;
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Rewrites old class files (version 49, Java 5, as picocli ships them) to class-file version {@value #TARGET} with
 * stack maps, in place in a jar. Why: JDK 25's AOT cache does not store a class verified by the old (type-inferring)
 * verifier, which every class file below version 50 needs ("Skipping picocli/...: Old class has been linked"), nor
 * any class that implements one of them; so every start of the CLI loaded, verified and interpreted picocli's ~190
 * classes from the jar. The bytecode is unchanged: only the version and the {@code StackMapTable} the new verifier
 * checks (computed by the JDK's class-file API) are new, and the JVM still verifies every rewritten class when it
 * loads it.
 *
 * <p>{@code java -cp CLASSES io.kvslab.bench.cli.ClassFileUpgrade JAR PREFIX...} (bench/pom.xml runs it on the
 * shaded jar for {@code picocli/}, before the AOT training run).
 */
public final class ClassFileUpgrade {
    /** Class-file version written (Java 8): the lowest the JDK verifies only with stack maps, never falling back. */
    static final int TARGET = ClassFile.JAVA_8_VERSION;
    /** Version below which the JVM uses the old verifier (and the AOT cache skips the class). */
    static final int FIRST_WITH_STACK_MAPS = ClassFile.JAVA_6_VERSION;

    private ClassFileUpgrade() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: ClassFileUpgrade JAR PREFIX... (rewrites classes under each prefix, e.g. picocli/)");
            System.exit(2);
        }
        upgradeJar(Path.of(args[0]), List.of(args).subList(1, args.length));
    }

    /**
     * Rewrites, in {@code jar}, every class file below version {@value #FIRST_WITH_STACK_MAPS} whose entry name starts
     * with one of {@code prefixes}; returns how many. Types the stack maps merge are resolved from the jar itself, then
     * from the running JDK.
     */
    static int upgradeJar(Path jar, List<String> prefixes) throws IOException {
        try (FileSystem zip = FileSystems.newFileSystem(URI.create("jar:" + jar.toUri()), Map.of())) {
            Path root = zip.getPath("/");
            Map<String, byte[]> classes = new LinkedHashMap<>();
            try (Stream<Path> files = Files.walk(root)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    String name = root.relativize(p).toString();
                    if (name.endsWith(".class") && prefixes.stream().anyMatch(name::startsWith)) {
                        classes.put(name, Files.readAllBytes(p));
                    }
                }
            }
            Map<String, byte[]> upgraded = upgrade(classes, resolverFor(zip));
            for (Map.Entry<String, byte[]> e : upgraded.entrySet()) {
                Files.write(root.resolve(e.getKey()), e.getValue());
            }
            return upgraded.size();
        }
    }

    /**
     * The upgraded bytes of every class of {@code classes} (entry name to bytes) older than version
     * {@value #FIRST_WITH_STACK_MAPS}; newer ones are left out of the result (they need nothing).
     */
    static Map<String, byte[]> upgrade(Map<String, byte[]> classes, ClassHierarchyResolver resolver) {
        ClassFile cf = ClassFile.of(ClassFile.StackMapsOption.GENERATE_STACK_MAPS,
                ClassFile.ClassHierarchyResolverOption.of(resolver.orElse(ClassHierarchyResolver.defaultResolver())));
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> e : classes.entrySet()) {
            ClassModel model = cf.parse(e.getValue());
            if (model.majorVersion() >= FIRST_WITH_STACK_MAPS) {
                continue;
            }
            // the version element is replaced where it stands (first); passing every method body through a code
            // transform makes the API rebuild the code, and with it the stack maps
            ClassTransform transform = ((ClassTransform) (builder, element) -> {
                if (element instanceof ClassFileVersion) {
                    builder.withVersion(TARGET, 0);
                } else {
                    builder.with(element);
                }
            }).andThen(ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL));
            out.put(e.getKey(), cf.transformClass(model, transform));
        }
        return out;
    }

    /** Resolves the classes of the jar from its own entries. */
    private static ClassHierarchyResolver resolverFor(FileSystem zip) {
        return ClassHierarchyResolver.ofResourceParsing(desc -> open(zip, desc));
    }

    private static InputStream open(FileSystem zip, ClassDesc desc) {
        String internal = desc.descriptorString();
        Path p = zip.getPath("/" + internal.substring(1, internal.length() - 1) + ".class");
        try {
            return Files.exists(p) ? new ByteArrayInputStream(Files.readAllBytes(p)) : null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Entry names of the classes below version {@value #FIRST_WITH_STACK_MAPS}, in {@code classes}. */
    static List<String> oldClasses(Map<String, byte[]> classes) {
        List<String> old = new ArrayList<>();
        classes.forEach((name, bytes) -> {
            if (ClassFile.of().parse(bytes).majorVersion() < FIRST_WITH_STACK_MAPS) {
                old.add(name);
            }
        });
        return old;
    }
}
