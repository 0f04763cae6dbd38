package io.kvslab.bench.stress;

import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.ProcessMemory;

import java.util.List;

/** What a long-context stress run did and found: its counters, the bytes against their bounds, the violations. */
public record LongContextResult(LongContextConfig config, String attention, long tokens, long compressions, long attentionSteps,
                     long attentionChecks, double maxAttentionError, long contentChecks, long peakLiveBytes,
                     long peakReservedBytes, long liveBoundBytes, long reservedBoundBytes, long finalReservedBytes,
                     long slabsAcquired, long slabsReleased, double seconds, double appendSeconds, double compressSeconds, double attentionSeconds,
                     long violationCount, List<String> violations, ProcessMemory process) {
    public boolean ok() {
        return violationCount == 0;
    }

    public double tokensPerSecond() {
        return tokens / seconds;
    }

    public Json json() {
        LongContextConfig c = config;
        return Json.object()
                .put("test", "long-context")
                .put("model", c.model().name())
                .put("layers", c.model().layers())
                .put("kvHeads", c.model().kvHeads())
                .put("headDim", c.model().headDim())
                .put("dtype", c.dtype().label())
                .put("tokensPerBlock", c.tokensPerBlock())
                .put("slabBytes", c.slabBytes())
                .put("budget", c.budget())
                .put("interval", c.interval())
                .put("sinks", c.sinks())
                .put("chunk", c.chunk())
                .put("attentionEvery", c.attentionEvery())
                .put("attentionBackend", attention)
                .put("policy", c.policy())
                .put("tokens", tokens)
                .put("compressions", compressions)
                .put("attentionSteps", attentionSteps)
                .put("attentionChecks", attentionChecks)
                .put("maxAttentionError", maxAttentionError)
                .put("contentChecks", contentChecks)
                .put("peakLiveBytes", peakLiveBytes)
                .put("peakReservedBytes", peakReservedBytes)
                .put("liveBoundBytes", liveBoundBytes)
                .put("reservedBoundBytes", reservedBoundBytes)
                .put("finalReservedBytes", finalReservedBytes)
                .put("slabsAcquired", slabsAcquired)
                .put("slabsReleased", slabsReleased)
                .put("seconds", seconds)
                .put("tokensPerSecond", tokensPerSecond())
                .put("appendSeconds", appendSeconds)
                .put("compressSeconds", compressSeconds)
                .put("attentionSeconds", attentionSeconds)
                .put("processRssBytes", process.rssBytes())
                .put("processHwmBytes", process.hwmBytes())
                .put("violations", violationCount)
                .put("violationMessages", violations)
                .put("ok", ok());
    }

    public String summary() {
        LongContextConfig c = config;
        return String.format(java.util.Locale.ROOT, """
                long-context stress: %s, %s, %d tokens/block, policy %s, budget %d rows/head (+%d interval, chunk %d), %d sinks
                  streamed %,d tokens in %.1f s (%,.0f tokens/s): append %.1f s, compress %.1f s, attention %.1f s
                  compressions %,d; attention steps %,d (%s), reference checks %,d (max |err| %.3g); content checks %,d
                  peak live %s (bound %s), peak reserved %s (bound %s), reserved after close %s
                  slabs acquired %,d, released %,d (before close); process at the end of streaming: %s
                  violations: %d%s
                """, c.model().name(), c.dtype(), c.tokensPerBlock(), c.policy(), c.budget(), c.interval(), c.chunk(),
                c.sinks(), tokens, seconds, tokensPerSecond(), appendSeconds, compressSeconds, attentionSeconds,
                compressions, attentionSteps, attention, attentionChecks, maxAttentionError, contentChecks,
                Bytes.human(peakLiveBytes), Bytes.human(liveBoundBytes), Bytes.human(peakReservedBytes),
                Bytes.human(reservedBoundBytes), Bytes.human(finalReservedBytes), slabsAcquired, slabsReleased,
                process.describe(),
                violationCount,
                violations.isEmpty() ? "" : "\n    " + String.join("\n    ", violations));
    }
}
