package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.kvslab.bench.model.LoadedModel;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@code kvslab serve}'s HTTP front: the JDK's {@link HttpServer}, one virtual thread per exchange, in front of one
 * {@link Scheduler}. {@code POST /v1/completions} (OpenAI's completions API, streaming or not), {@code GET /health},
 * {@code GET /metrics}.
 */
final class CompletionServer implements AutoCloseable {
    /** Request bodies larger than this are refused (HTTP 400) without being kept. */
    static final int MAX_BODY_BYTES = 1 << 20;
    /** How long close() lets handlers finish their last writes (a client that never reads is then cut off). */
    private static final int STOP_GRACE_SECONDS = 1;
    /** A body refused for its size is read and dropped up to this many bytes, so its client sees the 400. */
    static final long DISCARD_LIMIT_BYTES = 16L << 20;

    private final HttpServer http;
    private final ExecutorService executor;
    private final Scheduler scheduler;
    private final ServerMetrics metrics;
    private final CompletionHandler completions;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    private CompletionServer(HttpServer http, ExecutorService executor, Scheduler scheduler, ServerMetrics metrics,
                             CompletionHandler completions) {
        this.http = http;
        this.executor = executor;
        this.scheduler = scheduler;
        this.metrics = metrics;
        this.completions = completions;
    }

    /** Loads nothing: binds {@code host:port} (0 = any free port), starts the scheduler and the HTTP server. */
    static CompletionServer start(LoadedModel model, String modelName, ServeConfig config, String host, int port)
            throws IOException {
        return start(model, modelName, config, null, host, port);
    }

    /** As above, sharing prompts' prefix blocks through the tiers {@code tiers} names (null: none). */
    static CompletionServer start(LoadedModel model, String modelName, ServeConfig config, TierOptions tiers,
                                  String host, int port) throws IOException {
        ServerMetrics metrics = new ServerMetrics();
        Scheduler scheduler = new Scheduler(model, config, metrics, tiers);
        HttpServer http;
        try {
            http = HttpServer.create(new InetSocketAddress(host, port), 256);
        } catch (IOException | RuntimeException e) {
            scheduler.close();
            throw e;
        }
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        CompletionHandler completions = new CompletionHandler(model, modelName, scheduler, metrics);
        CompletionServer server = new CompletionServer(http, executor, scheduler, metrics, completions);
        http.setExecutor(executor);
        http.createContext("/", server::route);
        scheduler.start();
        http.start();
        return server;
    }

    int port() {
        return http.getAddress().getPort();
    }

    String baseUrl() {
        return "http://" + http.getAddress().getHostString() + ":" + port();
    }

    Scheduler scheduler() {
        return scheduler;
    }

    ServerMetrics metrics() {
        return metrics;
    }

    long liveKvBytes() {
        return scheduler.storeStats().liveBytes();
    }

    private void route(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            String method = ex.getRequestMethod();
            switch (path) {
                case "/v1/completions", "/completions" -> {
                    if (!method.equals("POST")) {
                        drain(ex);
                        ApiErrors.send(ex, 405, "invalid_request_error", null, null, path + " takes POST, not " + method);
                    } else {
                        completions.handle(ex);
                    }
                }
                case "/health" -> {
                    drain(ex);
                    String down = scheduler.notServing();
                    if (down == null) {
                        send(ex, 200, "application/json", "{\"status\":\"ok\"}");
                    } else {   // the process is up but serves nothing: not healthy
                        ObjectNode body = ApiErrors.JSON.createObjectNode().put("status", "unavailable")
                                .put("reason", down);
                        send(ex, 503, "application/json", ApiErrors.JSON.writeValueAsString(body));
                    }
                }
                case "/metrics" -> {
                    drain(ex);
                    send(ex, 200, "text/plain; version=0.0.4; charset=utf-8",
                            metrics.render(scheduler.storeStats(), scheduler.limitBytes()));
                }
                default -> {
                    drain(ex);
                    ApiErrors.send(ex, 404, "invalid_request_error", null, null, "no endpoint " + method + " " + path
                            + "; this server has POST /v1/completions, GET /health and GET /metrics");
                }
            }
        }
    }

    /** Reads a small body we do not use, so the connection can be reused. */
    private static void drain(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            in.skip(MAX_BODY_BYTES);
        }
    }

    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        // The scheduler first: it tells every open request (an error event and [DONE] on a stream, a 503 otherwise)
        // while the connections are still up, and refuses new ones. Then HTTP, giving those last writes a moment.
        scheduler.close();
        http.stop(STOP_GRACE_SECONDS);
        executor.shutdownNow();
    }
}
