package io.kvslab.testing;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Crash isolation for tests: runs a class's {@code main} in a child JVM with the test class path and the project's
 * JVM flags, so that a SIGSEGV or a hang fails one test (with the child's output and hs_err file in the message)
 * instead of killing or stalling the whole run.
 */
public final class ForkedJvm {
    /** How a child JVM ended. {@code hsErr} is the text of its fatal-error log, or null when it wrote none. */
    public record Result(int exitCode, boolean timedOut, String stdout, String stderr, String hsErr) {
        /** Whether the child exited by itself with status 0 and wrote no fatal-error log. */
        public boolean clean() {
            return exitCode == 0 && !timedOut && hsErr == null;
        }

        /** Everything a failure message needs. */
        public String describe() {
            return "exit " + exitCode + (timedOut ? " (timed out, killed)" : "") + "\n--- stdout\n" + tail(stdout)
                    + "\n--- stderr\n" + tail(stderr) + (hsErr == null ? "" : "\n--- hs_err\n" + tail(hsErr));
        }

        private static String tail(String s) {
            return s.length() <= 4000 ? s : "..." + s.substring(s.length() - 4000);
        }
    }

    private ForkedJvm() {}

    /**
     * Runs {@code main.main(args)} in a new JVM and waits at most {@code timeoutSeconds}.
     *
     * @param extraJvmArgs JVM options added after the project's flags (e.g. {@code -Dkvslab.debug.poisonFreed=true})
     */
    public static Result run(Class<?> main, long timeoutSeconds, List<String> extraJvmArgs, String... args)
            throws IOException, InterruptedException {
        return runWithClassPath(main, timeoutSeconds, extraJvmArgs, classPath(), args);
    }

    /** Like {@link #run}, with a class path of the caller's choosing (e.g. {@link #classPathWithout} a jar). */
    public static Result runWithClassPath(Class<?> main, long timeoutSeconds, List<String> extraJvmArgs,
                                          String classPath, String... args) throws IOException, InterruptedException {
        return start(main, timeoutSeconds, List.of("--enable-native-access=ALL-UNNAMED"), extraJvmArgs, classPath,
                args);
    }

    /**
     * Like {@link #run}, in a JVM that refuses native access to the class path ({@code --illegal-native-access=deny},
     * no {@code --enable-native-access}): what an embedder who leaves the flag out gets on a JDK that denies by default.
     */
    public static Result runDenyingNativeAccess(Class<?> main, long timeoutSeconds, String... args)
            throws IOException, InterruptedException {
        return start(main, timeoutSeconds, List.of("--illegal-native-access=deny"), List.of(), classPath(), args);
    }

    private static Result start(Class<?> main, long timeoutSeconds, List<String> nativeAccess,
                                List<String> extraJvmArgs, String classPath, String... args)
            throws IOException, InterruptedException {
        Path work = Files.createTempDirectory("kvslab-forked-");
        Path out = work.resolve("stdout.txt");
        Path err = work.resolve("stderr.txt");
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(nativeAccess);
        cmd.add("--sun-misc-unsafe-memory-access=allow");
        cmd.add("-XX:ErrorFile=" + work.resolve("hs_err_%p.log"));
        cmd.add("-Xmx1g");
        cmd.addAll(extraJvmArgs);
        cmd.add("-cp");
        cmd.add(classPath);
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            boolean finished = p.waitFor(timeoutSeconds, TimeUnit.SECONDS);
            if (!finished) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            String hsErr = null;
            try (Stream<Path> files = Files.list(work)) {
                for (Path f : files.toList()) {
                    if (f.getFileName().toString().startsWith("hs_err")) {
                        hsErr = Files.readString(f);
                    }
                }
            }
            return new Result(finished ? p.exitValue() : -1, !finished, Files.readString(out),
                    Files.readString(err), hsErr);
        } finally {
            // Everything the caller needs is in the Result; the directory (up to ~120 KB with an hs_err log) went
            // unremoved before, and a day of test runs left hundreds in the temp directory.
            deleteQuietly(work);
        }
    }

    private static void deleteQuietly(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // a child still holding a file open (killed on timeout) must not turn a result into an error
        }
    }

    /** The test class path minus the entries {@code drop} matches (e.g. an optional dependency's jars). */
    public static String classPathWithout(Predicate<String> drop) {
        return Arrays.stream(classPath().split(File.pathSeparator)).filter(drop.negate())
                .collect(Collectors.joining(File.pathSeparator));
    }

    /** The test class path: surefire puts it in {@code surefire.test.class.path} (the JVM's own is a booter jar). */
    static String classPath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }
}
