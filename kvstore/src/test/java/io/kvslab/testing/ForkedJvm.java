package io.kvslab.testing;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/** Runs a main class of the test class path in a fresh JVM with chosen flags; for what one JVM cannot test. */
public final class ForkedJvm {
    private ForkedJvm() {}

    /** What the child printed (stdout and stderr together) and its exit code. */
    public record Result(int exitCode, String output) {}

    /** The test class path, minus the entries {@code drop} matches. */
    public static String classPath(Predicate<String> drop) {
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(drop.negate())
                .collect(Collectors.joining(File.pathSeparator));
    }

    /** Runs {@code java FLAGS -cp CLASSPATH MAIN ARGS}, waiting at most two minutes. */
    public static Result run(List<String> flags, String classPath, Class<?> main, String... args)
            throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(flags);
        cmd.add("-cp");
        cmd.add(classPath);
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(2, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IllegalStateException("forked JVM did not finish: " + cmd);
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }
}
