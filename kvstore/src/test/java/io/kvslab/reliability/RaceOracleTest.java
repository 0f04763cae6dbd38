package io.kvslab.reliability;

import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs {@link RaceHarness} in a forked JVM ({@link ForkedJvm}: a SIGSEGV or hang fails this test with the child's
 * output and hs_err log, not the run) with freed blocks poisoned and reused at once: audit C ports (decode racing
 * close, keep, pressure-handler eviction) plus the mixed 4-thread no-silent-corruption run. Duration per mode:
 * {@code -Dkvslab.race.seconds} for the single-race modes (default 3), {@code -Dkvslab.race.mixedSeconds} for the
 * mixed 4-thread run (default 30, as in CI; docs/reliability.md records a 10-minute run).
 */
class RaceOracleTest {
    @ParameterizedTest
    @CsvSource({"close, 1", "keep, 2", "handler, 3", "mixed, 4"})
    void racingDecodeSeesALegalOutputOrATypedException(String mode, long seed) throws Exception {
        double seconds = mode.equals("mixed")
                ? Double.parseDouble(System.getProperty("kvslab.race.mixedSeconds", "30"))
                : Double.parseDouble(System.getProperty("kvslab.race.seconds", "3"));
        ForkedJvm.Result r = ForkedJvm.run(RaceHarness.class, (long) seconds + 180,   // hang guard only
                List.of("-Dkvslab.debug.poisonFreed=true", "-Xmx512m"), mode, Double.toString(seconds),
                Long.toString(seed));
        assertTrue(r.clean(), r.describe());
        String out = r.stdout();
        assertTrue(out.contains("poisonFreed=true"), out);
        assertTrue(out.contains("violations=0"), out);
        long decodes = Long.parseLong(out.replaceAll("(?s).*decodes=(\\d+).*", "$1"));
        assertTrue(decodes > 0, "no decode ran:\n" + out);
        System.out.println("race " + mode + ": " + out.lines().filter(l -> l.startsWith("mode=")).findFirst()
                .orElse(out));
    }
}
