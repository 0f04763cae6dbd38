package io.kvslab.bench.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.attribute.CodeAttribute;
import java.lang.reflect.InvocationTargetException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The picocli class files the build rewrites for the AOT cache: same bytecode, new version, verified, same behaviour. */
class ClassFileUpgradeTest {
    private static Map<String, byte[]> original;
    private static Map<String, byte[]> upgraded;

    @BeforeAll
    static void upgradePicocli() throws IOException, URISyntaxException {
        original = picocliClasses();
        upgraded = ClassFileUpgrade.upgrade(original, resolver(original));
    }

    /** Every class file of the picocli jar the CLI is built with (entry name to bytes). */
    private static Map<String, byte[]> picocliClasses() throws IOException, URISyntaxException {
        Path jar = Path.of(CommandLine.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Map<String, byte[]> classes = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (ZipEntry e : Collections.list(zip.entries())) {
                if (e.getName().startsWith("picocli/") && e.getName().endsWith(".class")) {
                    classes.put(e.getName(), zip.getInputStream(e).readAllBytes());
                }
            }
        }
        return classes;
    }

    private static ClassHierarchyResolver resolver(Map<String, byte[]> classes) {
        return ClassHierarchyResolver.ofResourceParsing(desc -> {
            String d = desc.descriptorString();
            byte[] b = classes.get(d.substring(1, d.length() - 1) + ".class");
            return b == null ? null : new ByteArrayInputStream(b);
        });
    }

    @Test
    void everyOldPicocliClassIsRewrittenToVersion52() {
        List<String> old = ClassFileUpgrade.oldClasses(original);
        // picocli 4.7.x ships Java 5 class files: the reason for the upgrade (if that changes, the test says so)
        assertEquals(original.keySet().stream().sorted().toList(), old.stream().sorted().toList());
        assertTrue(old.size() > 150, "picocli classes: " + old.size());
        assertEquals(old, List.copyOf(upgraded.keySet()));
        for (Map.Entry<String, byte[]> e : upgraded.entrySet()) {
            ClassModel m = ClassFile.of().parse(e.getValue());
            assertEquals(52, m.majorVersion(), e.getKey());
            assertEquals(0, m.minorVersion(), e.getKey());
        }
        // what is already new needs nothing
        assertTrue(ClassFileUpgrade.upgrade(upgraded, resolver(upgraded)).isEmpty());
    }

    @Test
    void bytecodeIsUnchangedOnlyStackMapsAreAdded() {
        int methods = 0;
        int withMaps = 0;
        for (Map.Entry<String, byte[]> e : upgraded.entrySet()) {
            ClassModel before = ClassFile.of().parse(original.get(e.getKey()));
            ClassModel after = ClassFile.of().parse(e.getValue());
            assertEquals(before.thisClass().asInternalName(), after.thisClass().asInternalName());
            assertEquals(before.flags().flagsMask(), after.flags().flagsMask(), e.getKey());
            assertEquals(before.fields().size(), after.fields().size(), e.getKey());
            assertEquals(before.methods().size(), after.methods().size(), e.getKey());
            for (int i = 0; i < before.methods().size(); i++) {
                MethodModel mb = before.methods().get(i);
                MethodModel ma = after.methods().get(i);
                String where = e.getKey() + " " + mb.methodName().stringValue() + mb.methodType().stringValue();
                assertEquals(mb.methodName().stringValue() + mb.methodType().stringValue(),
                        ma.methodName().stringValue() + ma.methodType().stringValue(), where);
                assertEquals(mb.flags().flagsMask(), ma.flags().flagsMask(), where);
                CodeAttribute cb = mb.findAttribute(Attributes.code()).orElse(null);
                CodeAttribute ca = ma.findAttribute(Attributes.code()).orElse(null);
                assertEquals(cb == null, ca == null, where);
                if (cb == null) {
                    continue;
                }
                methods++;
                assertArrayEquals(cb.codeArray(), ca.codeArray(), where);
                assertEquals(cb.exceptionHandlers().size(), ca.exceptionHandlers().size(), where);
                assertFalse(cb.findAttribute(Attributes.stackMapTable()).isPresent(), where);
                if (ca.findAttribute(Attributes.stackMapTable()).isPresent()) {
                    withMaps++;
                }
            }
        }
        assertTrue(methods > 1000, "methods with code: " + methods);
        assertTrue(withMaps > 300, "methods that got stack maps: " + withMaps);
    }

    /**
     * Loading every rewritten class in a loader of its own makes the JVM verify it with the type-checking verifier
     * (stack maps; version 52 never falls back to the old one); then the same picocli use runs on the original and the
     * rewritten classes and must give the same help text, parsed value and error message.
     */
    @Test
    void rewrittenClassesVerifyAndBehaveLikeTheOriginals() throws Exception {
        ClassLoader rewritten = new BytesLoader(upgraded);
        for (String name : upgraded.keySet()) {
            Class.forName(name.substring(0, name.length() - ".class".length()).replace('/', '.'), true, rewritten);
        }
        String before = scenario(new BytesLoader(original));
        String after = scenario(rewritten);
        assertEquals(before, after);
        assertTrue(after.contains("|steps=7|"), after);
        assertTrue(after.contains("Invalid value for option '--steps': 'x' is not an int"), after);
        assertTrue(after.contains("--steps=<steps>"), after);
    }

    /** Builds a command with picocli's programmatic API (by reflection: the classes are the loader's own). */
    private static String scenario(ClassLoader l) throws Exception {
        Class<?> specClass = l.loadClass("picocli.CommandLine$Model$CommandSpec");
        Class<?> optionClass = l.loadClass("picocli.CommandLine$Model$OptionSpec");
        Class<?> cliClass = l.loadClass("picocli.CommandLine");
        Object spec = specClass.getMethod("create").invoke(null);
        specClass.getMethod("name", String.class).invoke(spec, "generate");
        Object builder = optionClass.getMethod("builder", String[].class).invoke(null, (Object) new String[] {"--steps", "-n"});
        // the builder's setters are public methods of picocli's package-private ArgSpec.Builder
        invoke(builder, "type", Class.class, int.class);
        invoke(builder, "paramLabel", String.class, "<steps>");
        invoke(builder, "description", String[].class, (Object) new String[] {"positions to run"});
        Object option = builder.getClass().getMethod("build").invoke(builder);
        specClass.getMethod("addOption", optionClass).invoke(spec, option);
        specClass.getMethod("mixinStandardHelpOptions", boolean.class).invoke(spec, true);
        Object cli = cliClass.getConstructor(Object.class).newInstance(spec);
        String usage = (String) cliClass.getMethod("getUsageMessage").invoke(cli);
        Object parsed = cliClass.getMethod("parseArgs", String[].class).invoke(cli, (Object) new String[] {"-n", "7"});
        Object steps = parsed.getClass().getMethod("matchedOptionValue", String.class, Object.class)
                .invoke(parsed, "--steps", -1);
        String error;
        try {
            cliClass.getMethod("parseArgs", String[].class).invoke(cli, (Object) new String[] {"--steps", "x"});
            error = "no error";
        } catch (InvocationTargetException e) {
            error = e.getCause().getClass().getName() + ": " + e.getCause().getMessage();
        }
        return usage + "|steps=" + steps + "|" + error;
    }

    private static void invoke(Object target, String name, Class<?> type, Object arg) throws Exception {
        java.lang.reflect.Method m = target.getClass().getMethod(name, type);
        m.setAccessible(true);
        m.invoke(target, arg);
    }

    @Test
    void upgradeJarRewritesOnlyThePrefixAndIsIdempotent(@TempDir Path dir) throws IOException {
        Path jar = dir.resolve("cli.jar");
        byte[] otherOld = original.get("picocli/CommandLine$Range.class");
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(jar))) {
            for (Map.Entry<String, byte[]> e : original.entrySet()) {
                out.putNextEntry(new ZipEntry(e.getKey()));
                out.write(e.getValue());
                out.closeEntry();
            }
            out.putNextEntry(new ZipEntry("other/Range.class"));   // an old class outside the prefix: left alone
            out.write(otherOld);
            out.closeEntry();
            out.putNextEntry(new ZipEntry("picocli/readme.txt"));
            out.write("not a class".getBytes());
            out.closeEntry();
        }
        assertEquals(original.size(), ClassFileUpgrade.upgradeJar(jar, List.of("picocli/")));
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (String name : original.keySet()) {
                byte[] bytes = zip.getInputStream(zip.getEntry(name)).readAllBytes();
                assertArrayEquals(upgraded.get(name), bytes, name);
            }
            assertArrayEquals(otherOld, zip.getInputStream(zip.getEntry("other/Range.class")).readAllBytes());
            assertEquals("not a class", new String(zip.getInputStream(zip.getEntry("picocli/readme.txt")).readAllBytes()));
        }
        assertEquals(0, ClassFileUpgrade.upgradeJar(jar, List.of("picocli/")));
    }

    /** Defines classes from bytes, delegating only the JDK's to its parent. */
    private static final class BytesLoader extends ClassLoader {
        private final Map<String, byte[]> classes;

        BytesLoader(Map<String, byte[]> classes) {
            super("upgrade-test", ClassLoader.getPlatformClassLoader());
            this.classes = classes;
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] b = classes.get(name.replace('.', '/') + ".class");
            if (b == null) {
                throw new ClassNotFoundException(name);
            }
            return defineClass(name, b, 0, b.length);
        }
    }
}
