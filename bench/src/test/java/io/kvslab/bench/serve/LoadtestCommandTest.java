package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code kvslab loadtest} against an in-process server: every request ok, --check finds no mismatch. */
class LoadtestCommandTest {
    private static int run(LoadtestCommand cmd, String... args) {
        return new CommandLine(cmd).execute(args);
    }

    @Test
    void checkedLoadPasses() throws Exception {
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withMaxBatch(16))) {
            LoadtestCommand cmd = new LoadtestCommand();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            cmd.out = new PrintStream(out, true, StandardCharsets.UTF_8);
            int rc = run(cmd, "--url", f.server.baseUrl(), "--clients", "6", "--requests", "18", "--max-tokens", "24",
                    "--check", "--json");
            assertEquals(0, rc, out.toString(StandardCharsets.UTF_8));
            JsonNode r = ServeFixture.JSON.readTree(out.toString(StandardCharsets.UTF_8));
            assertEquals(18, r.path("ok").intValue());
            assertEquals(0, r.path("failed").intValue());
            assertEquals(18, r.path("checked").intValue());
            assertEquals(0, r.path("mismatches").intValue());
            assertTrue(r.path("output_tokens").intValue() > 18);
            assertTrue(r.path("kv_live_bytes_peak").longValue() > 0);
        }
    }

    @Test
    void failedRequestsMakeItExitNonZero() throws Exception {
        // a 64 KiB KV limit cannot hold 100-token completions: every request fails with kv_memory_exhausted
        try (ServeFixture f = new ServeFixture(ServeConfig.defaults().withKvLimit(64 << 10, 64 << 10))) {
            LoadtestCommand cmd = new LoadtestCommand();
            cmd.out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
            cmd.err = cmd.out;
            assertEquals(1, run(cmd, "--url", f.server.baseUrl(), "--clients", "2", "--requests", "2",
                    "--max-tokens", "100", "--json"));
        }
    }

    @Test
    void onlyLoopbackTargets() {
        LoadtestCommand cmd = new LoadtestCommand();
        cmd.err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertEquals(2, run(cmd, "--url", "http://192.0.2.1:8080", "--requests", "1"));
        assertEquals(2, run(new LoadtestCommand(), "--url", "ftp://127.0.0.1:21", "--requests", "1"));
    }
}
