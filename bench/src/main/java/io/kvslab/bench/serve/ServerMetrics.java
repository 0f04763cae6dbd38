package io.kvslab.bench.serve;

import io.kvslab.StoreStats;

import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * What {@code GET /metrics} reports, in Prometheus text format: KV memory (from the store), the scheduler's queues,
 * request and token counters, latency histograms, and the scheduler's time per phase of a step. Counters are written
 * by the scheduler thread and the HTTP threads, read by the metrics handler.
 */
final class ServerMetrics {
    /** The phases of a scheduler step whose time is summed (seconds) in {@code kvslab_step_phase_seconds_total}. */
    enum Phase {
        /** Admission, removing finished and cancelled sequences, handing events to the HTTP threads. */
        SCHEDULE,
        /** Prompt chunks of newly admitted requests (projections and attention). */
        PREFILL,
        /** The batched decode's projections, norms, feed-forward and classifier (everything but attention). */
        MATMUL,
        /** The decode's attention calls through the store (append + Attention.decode), summed over the batch. */
        ATTENTION,
        /** Sampling the next token of every row from its logits (the request's own sampler). */
        SAMPLE,
        /**
         * Handing every row's token to its request: text decoding, stop strings, latency histograms, and the event
         * that wakes the request's HTTP thread.
         */
        DELIVER
    }

    final LongAdder requestsOk = new LongAdder();
    final LongAdder requestsFailed = new LongAdder();
    final LongAdder requestsInvalid = new LongAdder();
    final LongAdder requestsCancelled = new LongAdder();
    final LongAdder tokensGenerated = new LongAdder();
    final LongAdder promptTokens = new LongAdder();
    final LongAdder steps = new LongAdder();
    final LongAdder batchRows = new LongAdder();
    final LongAdder httpWriteNanos = new LongAdder();
    final LongAdder httpParseNanos = new LongAdder();
    final AtomicLong running = new AtomicLong();
    final AtomicLong waiting = new AtomicLong();
    final AtomicLong peakLiveBytes = new AtomicLong();
    final AtomicLong peakBatch = new AtomicLong();
    /** Pressure decisions (see {@link PressurePolicy}). */
    final LongAdder compressions = new LongAdder();
    final LongAdder swaps = new LongAdder();
    final LongAdder recomputes = new LongAdder();
    /** Tokens prefilled again after a recompute (prompt and generated). */
    final LongAdder recomputedTokens = new LongAdder();
    final AtomicLong swapped = new AtomicLong();
    /** KV bytes promised to running requests (reserved for their next tokens) and not yet allocated. */
    final AtomicLong pendingBytes = new AtomicLong();
    final AtomicLong prefixHitBlocks = new AtomicLong();
    private final LongAdder[] phaseNanos = new LongAdder[Phase.values().length];
    final LatencyHistogram timeToFirstToken = new LatencyHistogram("kvslab_time_to_first_token_seconds",
            "From the request's arrival to its first generated token.");
    final LatencyHistogram interTokenLatency = new LatencyHistogram("kvslab_inter_token_latency_seconds",
            "Between two consecutive generated tokens of one request.");

    ServerMetrics() {
        for (int i = 0; i < phaseNanos.length; i++) {
            phaseNanos[i] = new LongAdder();
        }
    }

    void addPhase(Phase p, long nanos) {
        phaseNanos[p.ordinal()].add(nanos);
    }

    long phaseNanos(Phase p) {
        return phaseNanos[p.ordinal()].sum();
    }

    void observeLive(long liveBytes) {
        peakLiveBytes.accumulateAndGet(liveBytes, Math::max);
    }

    /** More lines for /metrics (the shared prefix tier's), or null. */
    volatile java.util.function.Consumer<StringBuilder> extra;

    String render(StoreStats kv, long limitBytes) {
        StringBuilder o = new StringBuilder(4096);
        gauge(o, "kvslab_kv_live_bytes", "KV bytes in blocks sequences use.", kv.liveBytes());
        gauge(o, "kvslab_kv_reserved_bytes", "KV bytes reserved from the OS (whole slabs).", kv.reservedBytes());
        gauge(o, "kvslab_kv_limit_bytes", "The --kv-limit (Long.MAX_VALUE when none).", limitBytes);
        gauge(o, "kvslab_kv_pending_bytes", "KV bytes reserved for running requests' next tokens, not yet allocated.",
                pendingBytes.get());
        gauge(o, "kvslab_kv_live_bytes_peak", "Highest live KV bytes (the allocator's high-water mark).",
                Math.max(kv.peakLiveBytes(), Math.max(peakLiveBytes.get(), kv.liveBytes())));
        gauge(o, "kvslab_kv_reserved_bytes_peak", "Highest reserved KV bytes.", kv.peakReservedBytes());
        gauge(o, "kvslab_sequences_running", "Requests in the batch (prefilling or decoding).", running.get());
        gauge(o, "kvslab_sequences_waiting", "Requests queued for admission (recomputed ones included).", waiting.get());
        gauge(o, "kvslab_sequences_swapped", "Requests whose KV blocks are swapped out to a tier.", swapped.get());
        o.append("# HELP kvslab_preemptions_total Pressure decisions on running requests, by action.\n"
                + "# TYPE kvslab_preemptions_total counter\n");
        o.append("kvslab_preemptions_total{action=\"compress\"} ").append(compressions.sum()).append('\n');
        o.append("kvslab_preemptions_total{action=\"swap\"} ").append(swaps.sum()).append('\n');
        o.append("kvslab_preemptions_total{action=\"recompute\"} ").append(recomputes.sum()).append('\n');
        counter(o, "kvslab_recomputed_tokens_total", "Tokens prefilled again after a recompute.",
                recomputedTokens.sum());
        counter(o, "kvslab_prefix_hit_blocks_total", "Prompt token blocks served from the prefix cache.",
                prefixHitBlocks.get());
        counter(o, "kvslab_tokens_generated_total", "Completion tokens produced.", tokensGenerated.sum());
        counter(o, "kvslab_prompt_tokens_total", "Prompt tokens prefilled (BOS included).", promptTokens.sum());
        o.append("# HELP kvslab_requests_total Completion requests by outcome.\n# TYPE kvslab_requests_total counter\n");
        o.append("kvslab_requests_total{outcome=\"ok\"} ").append(requestsOk.sum()).append('\n');
        o.append("kvslab_requests_total{outcome=\"failed\"} ").append(requestsFailed.sum()).append('\n');
        o.append("kvslab_requests_total{outcome=\"invalid\"} ").append(requestsInvalid.sum()).append('\n');
        o.append("kvslab_requests_total{outcome=\"cancelled\"} ").append(requestsCancelled.sum()).append('\n');
        counter(o, "kvslab_steps_total", "Scheduler steps that ran at least one sequence.", steps.sum());
        counter(o, "kvslab_decode_rows_total", "Sequences decoded, summed over steps (mean batch = rows / steps).",
                batchRows.sum());
        gauge(o, "kvslab_decode_batch_peak", "Most sequences decoded in one step.", peakBatch.get());
        o.append("# HELP kvslab_step_phase_seconds_total Scheduler thread time per phase of a step.\n"
                + "# TYPE kvslab_step_phase_seconds_total counter\n");
        for (Phase p : Phase.values()) {
            o.append("kvslab_step_phase_seconds_total{phase=\"").append(p.name().toLowerCase(Locale.ROOT))
                    .append("\"} ").append(seconds(phaseNanos(p))).append('\n');
        }
        o.append("# HELP kvslab_http_seconds_total HTTP threads' time parsing requests and writing responses.\n"
                + "# TYPE kvslab_http_seconds_total counter\n");
        o.append("kvslab_http_seconds_total{part=\"parse\"} ").append(seconds(httpParseNanos.sum())).append('\n');
        o.append("kvslab_http_seconds_total{part=\"write\"} ").append(seconds(httpWriteNanos.sum())).append('\n');
        timeToFirstToken.render(o);
        interTokenLatency.render(o);
        java.util.function.Consumer<StringBuilder> more = extra;
        if (more != null) {
            more.accept(o);
        }
        return o.toString();
    }

    private static String seconds(long nanos) {
        return String.format(Locale.ROOT, "%.6f", nanos / 1e9);
    }

    private static void gauge(StringBuilder o, String name, String help, long v) {
        o.append("# HELP ").append(name).append(' ').append(help).append('\n');
        o.append("# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(v).append('\n');
    }

    private static void counter(StringBuilder o, String name, String help, long v) {
        o.append("# HELP ").append(name).append(' ').append(help).append('\n');
        o.append("# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(v).append('\n');
    }
}
