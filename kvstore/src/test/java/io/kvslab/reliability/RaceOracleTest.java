package io.kvslab.reliability;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs {@link RaceHarness} in a forked JVM with freed blocks poisoned and reused at once (audit C ports plus the
 * mixed no-silent-corruption run). A crash (SIGSEGV) fails this test only: the child's hs_err file is looked for
 * and reported. Duration per mode: {@code -Dkvslab.race.seconds} (default 3; mixed runs twice as long).
 */
class RaceOracleTest {
    @ParameterizedTest
    @CsvSource({"close, 1", "keep, 2", "handler, 3", "mixed, 4"})
    void racingDecodeSeesALegalOutputOrATypedException(String mode, long seed) throws Exception {
        double seconds = Double.parseDouble(System.getProperty("kvslab.race.seconds", "3"))
                * (mode.equals("mixed") ? 2 : 1);
        Path dir = Files.createDirectories(Path.of("target", "race-" + mode));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                "-Dkvslab.debug.poisonFreed=true", "-Xmx512m",
                "-XX:ErrorFile=" + dir.toAbsolutePath().resolve("hs_err_%p.log"),
                "-cp", System.getProperty("java.class.path"), RaceHarness.class.getName(), mode,
                Double.toString(seconds), Long.toString(seed)));
        Path log = dir.resolve("output.txt");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        boolean ended = p.waitFor((long) seconds + 180, TimeUnit.SECONDS);   // hang guard only
        if (!ended) {
            p.destroyForcibly().waitFor();
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        List<Path> crashes;
        try (Stream<Path> files = Files.list(dir)) {
            crashes = files.filter(f -> f.getFileName().toString().startsWith("hs_err")).toList();
        }
        assertTrue(ended, "the race harness hung:\n" + out);
        assertEquals(List.of(), crashes, "the JVM crashed:\n" + out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("poisonFreed=true"), out);
        assertTrue(out.contains("violations=0"), out);
        long decodes = Long.parseLong(out.replaceAll("(?s).*decodes=(\\d+).*", "$1"));
        assertTrue(decodes > 0, "no decode ran:\n" + out);
        System.out.println("race " + mode + ": " + out.lines().filter(l -> l.startsWith("mode=")).findFirst()
                .orElse(out));
    }

    static void deleteQuietly(Path p) throws IOException {
        Files.deleteIfExists(p);
    }
}
