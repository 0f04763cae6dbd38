package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvslab.bench.cli.Check;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * {@code kvslab loadtest}: C concurrent streaming clients send N greedy completion requests to a running
 * {@code kvslab serve}; reports requests ok/failed, output tokens/s, time to first token and inter-token latency
 * percentiles (HdrHistogram, client side), and from {@code /metrics} the peak KV bytes against the limit and the
 * scheduler's time per phase during the run. {@code --check} re-runs every prompt alone and compares the token ids.
 * Exits 1 on any failed request or mismatch.
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true,
        description = "Load a running `kvslab serve` with concurrent streaming clients and report throughput and latency.")
public final class LoadtestCommand implements Callable<Integer> {
    static final List<String> DEFAULT_PROMPTS = List.of("Once upon a time", "Lily and Ben", "The little dog",
            "One day, a girl named Sue", "Tom had a red ball", "The sun was", "A big bird", "");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Largest --prompts file read (64 MiB): the whole file is held in memory. */
    static final long MAX_PROMPTS_BYTES = 64L << 20;

    @Spec
    CommandSpec spec;

    @Option(names = "--url", required = true, description = "the server, e.g. http://127.0.0.1:8080 (loopback only)")
    String url;

    @Option(names = "--clients", defaultValue = "4", description = "concurrent clients (default: ${DEFAULT-VALUE})")
    int clients;

    @Option(names = "--requests", defaultValue = "32", description = "requests in all (default: ${DEFAULT-VALUE})")
    int requests;

    @Option(names = "--max-tokens", defaultValue = "64", description = "max_tokens per request (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--prompts", description = "file with one prompt per line (default: a built-in list of 8)")
    Path promptsFile;

    @Option(names = "--check", description = "re-run every prompt alone and compare its tokens with the loaded runs")
    boolean check;

    @Option(names = "--json", description = "print the report as JSON")
    boolean json;

    PrintStream out = System.out;
    PrintStream err = System.err;

    /** One streamed request's outcome. */
    private record Result(String prompt, boolean ok, String error, int[] tokens, long ttftMicros, long[] itlMicros) {}

    /** Runs the command alone (until the CLI registers it as a subcommand: {@code java -cp kvslab.jar io.kvslab.bench.serve.LoadtestCommand ...}). */
    public static void main(String[] args) {
        System.exit(new picocli.CommandLine(new LoadtestCommand()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        URI base;
        try {
            base = URI.create(url.endsWith("/") ? url.substring(0, url.length() - 1) : url);
            if (!"http".equals(base.getScheme()) || base.getHost() == null
                    || !InetAddress.getByName(base.getHost()).isLoopbackAddress()) {
                err.println("kvslab loadtest: --url must be http:// on a loopback address (127.0.0.1, ::1, localhost), got " + url);
                return 2;
            }
        } catch (IllegalArgumentException | IOException e) {
            err.println("kvslab loadtest: --url '" + url + "' is not usable: " + e.getMessage());
            return 2;
        }
        if (clients < 1 || requests < 1 || maxTokens < 1) {
            err.println("kvslab loadtest: --clients, --requests and --max-tokens must be >= 1");
            return 2;
        }
        List<String> prompts = DEFAULT_PROMPTS;
        if (promptsFile != null) {
            // a regular file (a FIFO would block the read, /dev/zero never end) of at most 64 MiB
            Check.inputFile(spec, "--prompts", promptsFile, MAX_PROMPTS_BYTES);
            try {
                prompts = readPrompts(promptsFile);
            } catch (CharacterCodingException e) {
                err.println("kvslab loadtest: --prompts: " + promptsFile + " is not valid UTF-8 text");
                return 2;
            } catch (IOException e) {
                err.println("kvslab loadtest: --prompts: cannot read " + promptsFile + ": " + describe(e));
                return 1;
            }
            if (prompts == null) {
                err.println("kvslab loadtest: --prompts: " + promptsFile + " grew past the " + MAX_PROMPTS_BYTES
                        + " bytes allowed while it was read");
                return 2;
            }
            if (prompts.isEmpty()) {
                err.println("kvslab loadtest: " + promptsFile + " has no prompts");
                return 2;
            }
        }
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        Map<String, Double> before;
        try {
            before = metrics(http, base);
        } catch (IOException e) {
            err.println("kvslab loadtest: cannot reach the server at " + url + " (GET /metrics): " + describe(e)
                    + (refused(e) ? ": connection refused; is `kvslab serve` running there?" : ""));
            return 1;
        }
        List<Result> results = new ArrayList<>();
        AtomicInteger next = new AtomicInteger();
        List<String> ps = prompts;
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<Result>>> fs = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                fs.add(pool.submit(() -> {
                    List<Result> mine = new ArrayList<>();
                    for (int i = next.getAndIncrement(); i < requests; i = next.getAndIncrement()) {
                        mine.add(streamOne(http, base, ps.get(i % ps.size())));
                    }
                    return mine;
                }));
            }
            for (Future<List<Result>> f : fs) {
                results.addAll(f.get());
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        Map<String, Double> after;
        try {
            after = metrics(http, base);
        } catch (IOException e) {
            err.println("kvslab loadtest: lost the server at " + url + " after the run (GET /metrics): " + describe(e));
            return 1;
        }
        int mismatches = 0;
        int checked = 0;
        if (check) {
            Map<String, int[]> alone = new HashMap<>();
            for (Result r : results) {
                if (!r.ok()) {
                    continue;
                }
                int[] ref = alone.get(r.prompt());
                if (ref == null) {
                    Result solo = streamOne(http, base, r.prompt());
                    if (!solo.ok()) {
                        err.println("kvslab loadtest: the check run of '" + r.prompt() + "' failed: " + solo.error());
                        mismatches++;
                        continue;
                    }
                    ref = solo.tokens();
                    alone.put(r.prompt(), ref);
                }
                checked++;
                if (!Arrays.equals(ref, r.tokens())) {
                    mismatches++;
                    err.println("kvslab loadtest: tokens of '" + r.prompt() + "' under load differ from the run alone");
                }
            }
        }
        report(results, seconds, before, after, checked, mismatches);
        long failed = results.stream().filter(r -> !r.ok()).count();
        // under memory pressure the server compressed or recomputed some requests, which are exempt from the check;
        // a client cannot tell which ones, so mismatches are then reported but not held against the server
        boolean exempt = preemptions(before, after) > 0;
        if (check && mismatches > 0 && exempt) {
            err.println("kvslab loadtest: " + mismatches + " mismatches while the server preempted "
                    + (long) preemptions(before, after) + " times: not counted (preempted requests are exempt)");
        }
        return failed == 0 && (mismatches == 0 || exempt) ? 0 : 1;
    }

    /**
     * The lines of a prompts file, read as strict UTF-8 (CR, LF or CRLF end a line); null if it holds more than
     * {@link #MAX_PROMPTS_BYTES} (it grew after it was checked).
     */
    static List<String> readPrompts(Path file) throws IOException {
        byte[] b;
        try (java.io.InputStream in = Files.newInputStream(file)) {
            b = in.readNBytes((int) MAX_PROMPTS_BYTES + 1);
        }
        if (b.length > MAX_PROMPTS_BYTES) {
            return null;
        }
        String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
        return text.lines().toList();
    }

    private static boolean refused(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof java.net.ConnectException) {
                return true;
            }
        }
        return false;
    }

    /** An exception as one line: its class and message, and those of its causes that add one. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            String m = t.getMessage();
            if (t != e && (m == null || sb.toString().contains(m))) {
                continue;
            }
            sb.append(sb.isEmpty() ? "" : ": ").append(t.getClass().getSimpleName());
            if (m != null) {
                sb.append(" (").append(m).append(')');
            }
        }
        return sb.toString();
    }

    private Result streamOne(HttpClient http, URI base, String prompt) {
        ObjectNode body = JSON.createObjectNode();
        body.put("prompt", prompt);
        body.put("max_tokens", maxTokens);
        body.put("temperature", 0.0);
        body.put("stream", true);
        body.put("return_token_ids", true);
        long start = System.nanoTime();
        try {
            HttpRequest req = HttpRequest.newBuilder(base.resolve("/v1/completions"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build();
            HttpResponse<java.util.stream.Stream<String>> resp = http.send(req, HttpResponse.BodyHandlers.ofLines());
            if (resp.statusCode() != 200) {
                String text = String.join("\n", resp.body().toList());
                return new Result(prompt, false, "HTTP " + resp.statusCode() + ": " + text, null, 0, null);
            }
            List<Integer> tokens = new ArrayList<>();
            List<Long> itl = new ArrayList<>();
            long ttft = -1;
            long last = 0;
            boolean done = false;
            String error = null;
            for (Iterator<String> it = resp.body().iterator(); it.hasNext(); ) {
                String line = it.next();
                if (!line.startsWith("data: ")) {
                    continue;
                }
                String data = line.substring(6);
                if (data.equals("[DONE]")) {
                    done = true;
                    break;
                }
                JsonNode j = JSON.readTree(data);
                if (j.has("error")) {
                    error = j.get("error").path("message").asText();
                    continue;
                }
                JsonNode ids = j.path("choices").path(0).path("token_ids");
                if (ids.isArray() && !ids.isEmpty()) {
                    long now = System.nanoTime();
                    if (ttft < 0) {
                        ttft = (now - start) / 1000;
                    } else {
                        itl.add((now - last) / 1000);
                    }
                    last = now;
                    for (JsonNode id : ids) {
                        tokens.add(id.intValue());
                    }
                }
            }
            if (error != null || !done) {
                return new Result(prompt, false, error != null ? error : "the stream ended without [DONE]", null, 0, null);
            }
            return new Result(prompt, true, null, tokens.stream().mapToInt(Integer::intValue).toArray(), Math.max(ttft, 0),
                    itl.stream().mapToLong(Long::longValue).toArray());
        } catch (IOException e) {
            return new Result(prompt, false, describe(e), null, 0, null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(prompt, false, "interrupted", null, 0, null);
        }
    }

    /** The server's /metrics as name{labels} -> value (histogram buckets skipped). */
    static Map<String, Double> metrics(HttpClient http, URI base) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("/metrics")).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IOException("GET /metrics answered " + r.statusCode());
        }
        Map<String, Double> m = new HashMap<>();
        for (String line : r.body().split("\n")) {
            if (line.startsWith("#") || line.isBlank() || line.contains("_bucket{")) {
                continue;
            }
            int sp = line.lastIndexOf(' ');
            m.put(line.substring(0, sp), Double.parseDouble(line.substring(sp + 1)));
        }
        return m;
    }

    private void report(List<Result> results, double seconds, Map<String, Double> before, Map<String, Double> after,
                        int checked, int mismatches) throws IOException {
        Histogram ttft = new Histogram(3);
        Histogram itl = new Histogram(3);
        long ok = 0;
        long tokens = 0;
        for (Result r : results) {
            if (!r.ok()) {
                continue;
            }
            ok++;
            tokens += r.tokens().length;
            if (r.tokens().length > 0) {
                ttft.recordValue(Math.max(1, r.ttftMicros()));
            }
            for (long v : r.itlMicros()) {
                itl.recordValue(Math.max(1, v));
            }
        }
        long failed = results.size() - ok;
        double steps = delta(before, after, "kvslab_steps_total");
        ObjectNode rep = JSON.createObjectNode();
        rep.put("clients", clients);
        rep.put("requests", results.size());
        rep.put("ok", ok);
        rep.put("failed", failed);
        rep.put("max_tokens", maxTokens);
        rep.put("seconds", round(seconds));
        rep.put("output_tokens", tokens);
        rep.put("output_tokens_per_second", round(tokens / seconds));
        rep.put("ttft_ms_p50", ttft.getTotalCount() == 0 ? 0 : ttft.getValueAtPercentile(50) / 1000.0);
        rep.put("ttft_ms_p99", ttft.getTotalCount() == 0 ? 0 : ttft.getValueAtPercentile(99) / 1000.0);
        rep.put("itl_ms_p50", itl.getTotalCount() == 0 ? 0 : itl.getValueAtPercentile(50) / 1000.0);
        rep.put("itl_ms_p99", itl.getTotalCount() == 0 ? 0 : itl.getValueAtPercentile(99) / 1000.0);
        rep.put("kv_live_bytes_peak", after.getOrDefault("kvslab_kv_live_bytes_peak", 0.0).longValue());
        rep.put("kv_limit_bytes", after.getOrDefault("kvslab_kv_limit_bytes", 0.0).longValue());
        rep.put("compressions", (long) delta(before, after, "kvslab_preemptions_total{action=\"compress\"}"));
        rep.put("swaps", (long) delta(before, after, "kvslab_preemptions_total{action=\"swap\"}"));
        rep.put("recomputes", (long) delta(before, after, "kvslab_preemptions_total{action=\"recompute\"}"));
        rep.put("steps", (long) steps);
        rep.put("mean_decode_batch", steps == 0 ? 0 : round(delta(before, after, "kvslab_decode_rows_total") / steps));
        ObjectNode phases = rep.putObject("step_phase_ms_per_step");
        for (ServerMetrics.Phase p : ServerMetrics.Phase.values()) {
            String key = "kvslab_step_phase_seconds_total{phase=\"" + p.name().toLowerCase(Locale.ROOT) + "\"}";
            phases.put(p.name().toLowerCase(Locale.ROOT), steps == 0 ? 0 : round(delta(before, after, key) * 1000 / steps));
        }
        phases.put("http_write", steps == 0 ? 0
                : round(delta(before, after, "kvslab_http_seconds_total{part=\"write\"}") * 1000 / steps));
        if (check) {
            rep.put("checked", checked);
            rep.put("mismatches", mismatches);
        }
        for (Result r : results) {
            if (!r.ok()) {
                err.println("kvslab loadtest: failed request ('" + r.prompt() + "'): " + r.error());
            }
        }
        if (json) {
            out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(rep));
            return;
        }
        out.printf(Locale.ROOT, "%d clients, %d requests: %d ok, %d failed in %.2f s%n", clients, results.size(), ok,
                failed, seconds);
        out.printf(Locale.ROOT, "output: %d tokens, %.1f tokens/s; %d steps, mean decode batch %.2f%n", tokens,
                tokens / seconds, (long) steps, rep.get("mean_decode_batch").doubleValue());
        out.printf(Locale.ROOT, "time to first token: p50 %.2f ms, p99 %.2f ms%n", rep.get("ttft_ms_p50").doubleValue(),
                rep.get("ttft_ms_p99").doubleValue());
        out.printf(Locale.ROOT, "inter-token latency: p50 %.2f ms, p99 %.2f ms%n", rep.get("itl_ms_p50").doubleValue(),
                rep.get("itl_ms_p99").doubleValue());
        long limit = rep.get("kv_limit_bytes").longValue();
        out.printf(Locale.ROOT, "KV bytes: peak live %d, limit %s%n", rep.get("kv_live_bytes_peak").longValue(),
                limit == Long.MAX_VALUE || limit <= 0 ? "none" : Long.toString(limit));
        out.printf(Locale.ROOT, "preemptions: %d compressions, %d swaps, %d recomputes%n",
                rep.get("compressions").longValue(), rep.get("swaps").longValue(), rep.get("recomputes").longValue());
        out.println("scheduler ms per step: " + phases);
        if (check) {
            out.printf(Locale.ROOT, "check: %d requests compared with the prompt alone, %d mismatches%n", checked, mismatches);
        }
    }

    /** Compressions, swaps and recomputes the server made during the run. */
    private static double preemptions(Map<String, Double> before, Map<String, Double> after) {
        double sum = 0;
        for (String a : new String[] {"compress", "swap", "recompute"}) {
            sum += delta(before, after, "kvslab_preemptions_total{action=\"" + a + "\"}");
        }
        return sum;
    }

    private static double delta(Map<String, Double> before, Map<String, Double> after, String key) {
        return after.getOrDefault(key, 0.0) - before.getOrDefault(key, 0.0);
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
