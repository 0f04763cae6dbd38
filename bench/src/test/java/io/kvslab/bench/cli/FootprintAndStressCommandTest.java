package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Exit codes and outputs of {@code kvslab footprint} and {@code kvslab stress} on small configurations. */
class FootprintAndStressCommandTest {
    private record Run(int code, String out, String err) {}

    private static Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void footprintPrintsTheTableJsonAndPlot(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("fp.png");
        Run r = run("footprint", "--models", "stories260k,2:4:2:16", "--contexts", "512,1m", "--dtypes", "f16",
                "--limit", "8m", "--plot", png.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("stories260K") && r.out().contains("custom-2x4x2x16"), r.out());
        assertTrue(r.out().contains("measured") && r.out().contains("analytic"), r.out());
        assertTrue(Files.size(png) > 1000);
        Run j = run("footprint", "--models", "stories260k", "--contexts", "4096", "--dtypes", "bf16", "--policies",
                "full", "--json");
        assertEquals(0, j.code(), j.err());
        // 2 x 5 layers x 4 KV heads x 8 dims x 2 bytes x 4096 tokens
        assertTrue(j.out().contains("\"theoreticalBytes\": 2621440"), j.out());
        assertTrue(j.out().trim().startsWith("{") && j.out().trim().endsWith("}"), j.out());
    }

    @Test
    void footprintTakesAKvPairAndReportsItsBytesPerRow() {
        Run j = run("footprint", "--models", "stories260k", "--contexts", "4096", "--dtypes", "f16,q8_0/q4_0",
                "--policies", "full", "--json");
        assertEquals(0, j.code(), j.err());
        // stories260K: 5 layers x 4 KV heads, head dim 8; q8_0 = 8 + 2 bytes/row, q4_0 = 4 + 2 bytes/row, f16 = 16
        assertTrue(j.out().contains("\"dtype\": \"q8_0/q4_0\"") && j.out().contains("\"rowPairBytes\": 16,")
                && j.out().contains("\"rowPairBytes\": 32,"), j.out());
        assertTrue(j.out().contains("\"theoreticalBytes\": " + 5L * 4 * 4096 * (10 + 6) + ","), j.out());
        assertTrue(j.out().contains("\"theoreticalBytes\": " + 5L * 4 * 4096 * 32 + ","), j.out());
    }

    @Test
    void everyDtypeOptionTakesTheSameFormsAndListsThemOnError() {
        for (String[] args : new String[][] {{"footprint", "--dtypes", "f16,q8_0/q9"}, {"stress", "long", "--dtype",
                "q8_0/q9"}, {"stress", "churn", "--dtype", "q8_0/q9"}, {"demo", "--dtype", "q8_0/q9"},
                {"eval", "fidelity", "--kv-dtype", "f32,q8_0/q9"}}) {
            Run r = run(args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains("'q9' in 'q8_0/q9' is not an element type; allowed: "
                    + KvDtypesConverter.ALLOWED), r.err());
        }
    }

    @Test
    void stressRunsWithKAndVOfDifferentTypes() {
        Run r = run("stress", "long", "--model", "2:4:2:32", "--tokens", "1200", "--budget", "200", "--interval",
                "64", "--attention-every", "300", "--check-every", "1", "--tokens-per-block", "8", "--slab", "16k",
                "--dtype", "q8_0/q4_0", "--no-progress", "--json");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("\"dtype\": \"q8_0/q4_0\"") && r.out().contains("\"ok\": true"), r.out());
    }

    @Test
    void usageErrorsExitWithTwo() {
        assertEquals(2, run("footprint", "--dtypes", "f8").code());
        assertEquals(2, run("footprint", "--models", "gpt-9").code());
        assertEquals(2, run("footprint", "--policies", "magic").code());
        assertEquals(2, run("footprint", "--colour", "red").code());
        assertEquals(2, run("stress", "sideways").code());
        assertEquals(2, run("stress", "long", "--budget", "0").code());
        assertEquals(2, run("stress", "long", "--sinks", "10", "--budget", "5").code());
        assertEquals(2, run("stress", "long", "--duration", "3").code());   // a churn option for the long test
        assertEquals(2, run("stress", "long", "--policy", "dbudgetkv").code());   // no memory bound to state
        assertEquals(2, run("stress", "long", "--policy", "h2o").code());
        assertEquals(0, run("stress", "--help").code());
    }

    @Test
    void stressRunsBothTestsAndExitsZeroWhenEveryInvariantHolds() {
        Run r = run("stress", "all", "--model", "2:4:2:32", "--tokens", "2500", "--budget", "200", "--interval", "64",
                "--attention-every", "500", "--check-every", "1", "--tokens-per-block", "8", "--slab", "16k",
                "--churn-model", "2:4:2:16", "--threads", "2", "--duration", "1", "--checkpoint", "0.2",
                "--no-progress", "--json");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("\"test\": \"long-context\"") && r.out().contains("\"test\": \"churn\""), r.out());
        assertTrue(r.out().contains("\"ok\": true") && !r.out().contains("\"ok\": false"), r.out());
    }
}
