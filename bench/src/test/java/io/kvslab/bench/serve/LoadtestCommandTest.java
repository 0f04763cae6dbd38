package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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

    private record Run(int code, String err) {}

    /** Runs loadtest with both of its error streams (its own, picocli's) captured. */
    private static Run runCaptured(String... args) {
        LoadtestCommand cmd = new LoadtestCommand();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        cmd.err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        cmd.out = cmd.err;
        java.io.StringWriter usage = new java.io.StringWriter();
        CommandLine cl = new CommandLine(cmd);
        cl.setErr(new java.io.PrintWriter(usage, true));
        int rc = cl.execute(args);
        return new Run(rc, bytes.toString(StandardCharsets.UTF_8) + usage);
    }

    private static void assertRun(Run r, int code, String... parts) {
        assertEquals(code, r.code(), r.err());
        for (String p : parts) {
            assertTrue(r.err().contains(p), "stderr '" + r.err() + "' should mention '" + p + "'");
        }
    }

    @Test
    void promptsThatAreNoTextFileOfAtMost64MiBAreRefusedWithOneClearLine(@TempDir Path dir) throws Exception {
        String url = "--url=http://127.0.0.1:1";   // never reached: the prompts are checked first
        // a FIFO blocked in readAllLines forever; /dev/zero ran out of memory
        Path fifo = dir.resolve("prompts.fifo");
        if (new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0) {
            assertRun(runCaptured(url, "--prompts=" + fifo), 2, "--prompts: not a readable file: " + fifo,
                    "not a regular file");
        }
        Path dev = Path.of("/dev/null");
        if (Files.exists(dev) && !Files.isRegularFile(dev)) {   // a device (unless something replaced it)
            assertRun(runCaptured(url, "--prompts=" + dev), 2, "--prompts: not a readable file: /dev/null");
        }
        assertRun(runCaptured(url, "--prompts=" + dir), 2, "--prompts: not a readable file: " + dir + " (a directory)");
        Path big = dir.resolve("big.txt");
        try (FileChannel c = FileChannel.open(big, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.wrap(new byte[] {'\n'}), LoadtestCommand.MAX_PROMPTS_BYTES);   // 64 MiB + 1, sparse
        }
        assertRun(runCaptured(url, "--prompts=" + big), 2, "--prompts: " + big + " has 67108865 bytes, more than the "
                + "67108864 allowed");
        Path bad = dir.resolve("bad.txt");
        Files.write(bad, new byte[] {'h', 'i', '\n', (byte) 0xC3, '(', '\n'});
        assertRun(runCaptured(url, "--prompts=" + bad), 2, "kvslab loadtest: --prompts: " + bad
                + " is not valid UTF-8 text");
        // what is read: lines, whatever the line ends
        Path ok = dir.resolve("ok.txt");
        Files.writeString(ok, "one\r\ntwo\rthree\n\u00e9t\u00e9\n");
        assertEquals(java.util.List.of("one", "two", "three", "\u00e9t\u00e9"), LoadtestCommand.readPrompts(ok));
    }

    @Test
    void aServerThatRefusesTheConnectionIsNamedWithTheReason() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        // closed again: nothing listens there (it printed only "ConnectException")
        assertRun(runCaptured("--url=http://127.0.0.1:" + port, "--requests=1"), 1,
                "kvslab loadtest: cannot reach the server at http://127.0.0.1:" + port + " (GET /metrics): "
                        + "ConnectException", "connection refused; is `kvslab serve` running there?");
    }

    @Test
    void onlyLoopbackTargets() {
        LoadtestCommand cmd = new LoadtestCommand();
        cmd.err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertEquals(2, run(cmd, "--url", "http://192.0.2.1:8080", "--requests", "1"));
        assertEquals(2, run(new LoadtestCommand(), "--url", "ftp://127.0.0.1:21", "--requests", "1"));
    }
}
