package io.kvslab.bench.model;

import io.kvslab.bench.report.Json;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The read-only shared test data (stories260K and llama2.c's goldens): the directory named by the system property
 * {@code kvslab.shared} (surefire sets it to the workspace's ../shared), else ../shared. Tests that need it are
 * skipped, with a message, only when the directory does not exist.
 */
public final class SharedModels {
    private static LoadedModel bin;
    private static LoadedModel gguf;

    private SharedModels() {}

    public static Path dir() {
        String p = System.getProperty("kvslab.shared");
        Path d = p != null ? Path.of(p) : Path.of("..", "shared");
        Assumptions.assumeTrue(Files.isDirectory(d), "shared model directory " + d.toAbsolutePath()
                + " is absent (outside the KVSlab workspace): skipping the tests on the real model");
        return d;
    }

    public static Path binFile() {
        return dir().resolve("models/stories260K.bin");
    }

    public static Path tokenizerFile() {
        return dir().resolve("models/tok512.bin");
    }

    public static Path ggufFile() {
        return dir().resolve("models/stories260K.gguf");
    }

    /** stories260K.bin with tok512.bin, loaded once per test JVM. */
    public static synchronized LoadedModel bin() {
        if (bin == null) {
            bin = LoadedModel.load(binFile(), tokenizerFile());
        }
        return bin;
    }

    /** stories260K.gguf with its own tokenizer, loaded once per test JVM. */
    public static synchronized LoadedModel gguf() {
        if (gguf == null) {
            gguf = LoadedModel.load(ggufFile(), null);
        }
        return gguf;
    }

    /** One of llama2.c's reference outputs. */
    public record Golden(String file, String prompt, int steps, float temperature, float topp, long seed, int[] ids,
                         String text) {}

    /** Every JSON under reference/, sorted by name. */
    public static List<Golden> goldens() {
        Path ref = dir().resolve("reference");
        List<Golden> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(ref)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                @SuppressWarnings("unchecked")
                Map<String, Object> m = (Map<String, Object>) Json.parse(Files.readString(f));
                List<?> ids = (List<?>) m.get("ids");
                out.add(new Golden(f.getFileName().toString(), (String) m.get("prompt"), ((Long) m.get("steps")).intValue(),
                        ((Number) m.get("temperature")).floatValue(), ((Number) m.get("topp")).floatValue(),
                        (Long) m.get("seed"), ids.stream().mapToInt(o -> ((Long) o).intValue()).toArray(),
                        (String) m.get("text")));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }
}
