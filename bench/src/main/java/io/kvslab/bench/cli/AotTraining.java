package io.kvslab.bench.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The build's AOT training run (bench/pom.xml, {@code -XX:AOTCacheOutput}): several {@code kvslab} command lines,
 * separated by {@value #THEN}, run one after the other in one JVM, so the cache records the classes and method
 * profiles of each (the JDK trains a cache on a single run). Exits with the first non-zero exit code, else 0.
 *
 * <p>{@code java -cp kvslab.jar io.kvslab.bench.cli.AotTraining generate ... --then stress long ...}
 */
public final class AotTraining {
    static final String THEN = "--then";

    private AotTraining() {}

    public static void main(String[] args) {
        System.exit(runAll(args));
    }

    static int runAll(String... args) {
        int code = 0;
        for (String[] line : split(args)) {
            int c = Main.run(line);
            code = code != 0 ? code : c;
        }
        return code;
    }

    /** The command lines between the {@value #THEN} separators (empty ones dropped). */
    static List<String[]> split(String... args) {
        List<String[]> lines = new ArrayList<>();
        int from = 0;
        for (int i = 0; i <= args.length; i++) {
            if (i == args.length || args[i].equals(THEN)) {
                if (i > from) {
                    lines.add(Arrays.copyOfRange(args, from, i));
                }
                from = i + 1;
            }
        }
        return lines;
    }
}
