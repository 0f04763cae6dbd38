package io.kvslab.bench.cli;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Locale;

/**
 * Checks of option values done before any work starts: ranges, choices from a list, input files that must be
 * readable and output locations that must be writable (so a long run cannot fail at its very end).
 */
public final class Check {
    private Check() {}

    static long range(CommandSpec spec, String option, long value, long min, long max) {
        if (value < min || value > max) {
            throw new ParameterException(spec.commandLine(), option + " must be in [" + min + ", " + max + "], got "
                    + value);
        }
        return value;
    }

    static int range(CommandSpec spec, String option, int value, int min, int max) {
        return (int) range(spec, option, (long) value, min, max);
    }

    static double range(CommandSpec spec, String option, double value, double min, double max) {
        if (!(value >= min && value <= max)) {
            throw new ParameterException(spec.commandLine(), option + " must be in [" + min + ", " + max + "], got "
                    + value);
        }
        return value;
    }

    /** {@code value} (compared case-insensitively) must be one of {@code allowed}; returns it in lower case. */
    static String choice(CommandSpec spec, String option, String value, Collection<String> allowed) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (!allowed.contains(v)) {
            throw new ParameterException(spec.commandLine(), option + ": unknown value '" + value + "'; allowed: "
                    + String.join(", ", allowed));
        }
        return v;
    }

    /**
     * An input file: it must exist, be a regular file (not a directory, FIFO or device: reading a FIFO blocks until a
     * writer comes) and be readable.
     */
    public static Path inputFile(CommandSpec spec, String option, Path file) {
        if (!Files.exists(file)) {
            throw new ParameterException(spec.commandLine(), option + ": no such file: " + file);
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new ParameterException(spec.commandLine(), option + ": not a readable file: " + file
                    + (Files.isDirectory(file) ? " (a directory)" : Files.isRegularFile(file) ? " (no read permission)"
                    : " (not a regular file: a FIFO, socket or device?)"));
        }
        return file;
    }

    /** An input file as {@link #inputFile}, of at most {@code maxBytes} bytes. */
    public static Path inputFile(CommandSpec spec, String option, Path file, long maxBytes) {
        inputFile(spec, option, file);
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), option + ": cannot read " + file + " (" + reason(e) + ")");
        }
        if (size > maxBytes) {
            throw new ParameterException(spec.commandLine(), option + ": " + file + " has " + size + " bytes, more than"
                    + " the " + maxBytes + " allowed");
        }
        return file;
    }

    /** An output directory: created if missing, and proven writable by creating and deleting a probe file in it. */
    static Path outputDir(CommandSpec spec, String option, Path dir) {
        try {
            Files.createDirectories(dir);
            Files.delete(Files.createTempFile(dir, ".kvslab-probe", ".tmp"));
            return dir;
        } catch (IOException | SecurityException e) {
            throw new ParameterException(spec.commandLine(), option + ": cannot write to directory " + dir + " ("
                    + reason(e) + ")");
        }
    }

    /** An output file: not a directory, and its directory must be writable. */
    static Path outputFile(CommandSpec spec, String option, Path file) {
        if (Files.isDirectory(file)) {
            throw new ParameterException(spec.commandLine(), option + ": " + file + " is a directory; give a file");
        }
        Path parent = file.toAbsolutePath().getParent();
        outputDir(spec, option, parent);
        return file;
    }

    private static String reason(Exception e) {
        String type = e.getClass().getSimpleName().replace("Exception", "");
        return e.getMessage() == null ? type : type + ": " + e.getMessage();
    }
}
