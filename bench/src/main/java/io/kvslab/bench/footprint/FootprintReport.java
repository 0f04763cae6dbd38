package io.kvslab.bench.footprint;

import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.Bytes;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The footprint table as text and as JSON. */
public final class FootprintReport {
    private FootprintReport() {}

    public static String header() {
        return String.format(Locale.ROOT, "%-16s %8s %-9s %6s %-16s %10s %12s %12s %12s %12s %8s %8s %12s %12s  %s",
                "model", "context", "dtype", "B/row", "policy", "kept/head", "theoretical", "live", "held", "reserved",
                "res/live", "res/theo", "proc RSS", "proc VmHWM", "mode");
    }

    public static String line(FootprintRow r) {
        return String.format(Locale.ROOT, "%-16s %8d %-9s %6d %-16s %10.1f %12s %12s %12s %12s %8.4f %8.4f %12s %12s  %s",
                r.model(), r.contextTokens(), r.dtype().label(), r.rowPairBytes(), r.policy(), r.keptTokensPerHead(),
                Bytes.human(r.theoreticalBytes()), Bytes.human(r.liveBytes()), Bytes.human(r.heldReservedBytes()),
                Bytes.human(r.reservedBytes()), r.overhead(), r.overTheoretical(),
                r.rssBytes() < 0 ? "-" : Bytes.human(r.rssBytes()), r.hwmBytes() < 0 ? "-" : Bytes.human(r.hwmBytes()),
                r.measured() ? String.format(Locale.ROOT, "measured %.1fs", r.seconds()) : r.mode());
    }

    public static String table(List<FootprintRow> rows) {
        StringBuilder sb = new StringBuilder(header()).append('\n');
        for (FootprintRow r : rows) {
            sb.append(line(r)).append('\n');
        }
        return sb.toString();
    }

    public static Json json(List<FootprintRow> rows, Json settings) {
        List<Object> list = new ArrayList<>();
        for (FootprintRow r : rows) {
            list.add(Json.object()
                    .put("model", r.model())
                    .put("contextTokens", r.contextTokens())
                    .put("dtype", r.dtype().label())
                    .put("keyDtype", r.dtype().key().name().toLowerCase(Locale.ROOT))
                    .put("valueDtype", r.dtype().value().name().toLowerCase(Locale.ROOT))
                    .put("rowPairBytes", r.rowPairBytes())
                    .put("policy", r.policy())
                    .put("keptTokensPerHead", r.keptTokensPerHead())
                    .put("theoreticalBytes", r.theoreticalBytes())
                    .put("liveBytes", r.liveBytes())
                    .put("heldReservedBytes", r.heldReservedBytes())
                    .put("reservedBytes", r.reservedBytes())
                    .put("overheadReservedOverLive", r.overhead())
                    .put("reservedOverTheoretical", r.overTheoretical())
                    .put("mode", r.mode())
                    .put("seconds", r.seconds())
                    .put("processRssBytes", r.rssBytes())
                    .put("processHwmBytes", r.hwmBytes()));
        }
        return Json.object().put("settings", settings).put("rows", list);
    }
}
