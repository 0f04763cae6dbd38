package io.kvslab.bench.eval.pod;

import io.kvslab.bench.report.Json;
import io.kvslab.bench.eval.fidelity.FidelityConfig;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@link PodEvaluation} measured: the rows, the groupings used, and the calibrated layer similarities, as a
 * Markdown section and as JSON.
 *
 * @param model       the model file name
 * @param modelId     the weights fingerprint the groupings are tied to
 * @param config      the fidelity settings (texts, split, block size, window)
 * @param pod         the PoD settings
 * @param texts       texts evaluated
 * @param meanContext mean context length in tokens
 * @param rows        one row per setting
 * @param groupings   per delta label, the groups of every KV head
 * @param similarity  {@code [kvHead][layer][layer]} mean 1 - JS similarity on the calibration texts (null when only
 *                    a grouping file was used)
 * @param seconds     wall time
 */
public record PodReport(String model, String modelId, FidelityConfig config, PodEvalConfig pod, int texts,
                        double meanContext, List<PodResult> rows, Map<String, String> groupings,
                        double[][][] similarity, double seconds) {
    public PodReport {
        rows = List.copyOf(rows);
        groupings = Map.copyOf(groupings);
    }

    /** The row with this method and setting, or null. */
    public PodResult row(String method, String setting) {
        for (PodResult r : rows) {
            if (r.method().equals(method) && r.setting().equals(setting)) {
                return r;
            }
        }
        return null;
    }

    /** A Markdown section: settings, groupings, similarities, the table. */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "## PoD (%s, %s): %d texts, mean context %.0f tokens, %d continuation "
                        + "tokens, %d rows per block, %.1f s%n%n", model, modelId, texts, meanContext,
                config.continuation(), config.tokensPerBlock(), seconds));
        sb.append("Groupings (per KV head, calibrated on ").append(pod.calibrationTexts()).append(" texts x ")
                .append(pod.calibrationQueries()).append(" queries):\n\n");
        groupings.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> sb.append("- delta ").append(e.getKey()).append(": ").append(e.getValue()).append('\n'));
        if (similarity != null) {
            sb.append("\nMean layer similarity 1 - JS (per KV head; row = lower layer):\n\n");
            for (int h = 0; h < similarity.length; h++) {
                sb.append("- KV head ").append(h).append(':');
                for (int a = 0; a < similarity[h].length; a++) {
                    sb.append(a == 0 ? " " : " / ");
                    for (int b = a + 1; b < similarity[h].length; b++) {
                        sb.append(String.format(Locale.ROOT, "%s%d-%d %.2f", b == a + 1 ? "" : ", ", a, b,
                                similarity[h][a][b]));
                    }
                }
                sb.append('\n');
            }
        }
        sb.append("\n| method | setting | shared (layer, KV head) | KV bytes kept | bytes saved | bytes kept at end "
                + "| mean KL (nats) | max KL | top-1 agree | ppl full | ppl | delta ppl |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (PodResult r : rows) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% | %.4f | %.3f | %.1f%% "
                            + "| %.3f | %.3f | %+.3f |%n", r.method(), r.setting(), r.sharedLayerHeads(),
                    100 * r.kvBytesFraction(), 100 * r.bytesSaved(), 100 * r.endBytesFraction(), r.meanKl(),
                    r.maxKl(), 100 * r.top1(), r.pplFull(), r.ppl(), r.deltaPpl()));
        }
        return sb.toString();
    }

    public String toJson() {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append("  \"model\": ").append(Json.quote(model)).append(",\n");
        sb.append("  \"modelId\": ").append(Json.quote(modelId)).append(",\n");
        sb.append("  \"texts\": ").append(texts).append(",\n");
        sb.append("  \"meanContextTokens\": ").append(num(meanContext)).append(",\n");
        sb.append("  \"continuation\": ").append(config.continuation()).append(",\n");
        sb.append("  \"tokensPerBlock\": ").append(config.tokensPerBlock()).append(",\n");
        sb.append("  \"sinks\": ").append(pod.sinks()).append(",\n");
        sb.append("  \"recents\": ").append(pod.recents()).append(",\n");
        sb.append("  \"deltas\": ").append(pod.deltas()).append(",\n");
        sb.append("  \"headlineDelta\": ").append(num(pod.headlineDelta())).append(",\n");
        sb.append("  \"seconds\": ").append(num(seconds)).append(",\n");
        sb.append("  \"groupings\": {");
        int i = 0;
        for (Map.Entry<String, String> e : groupings.entrySet().stream().sorted(Map.Entry.comparingByKey()).toList()) {
            sb.append(i++ == 0 ? "" : ", ").append(Json.quote(e.getKey())).append(": ").append(Json.quote(e.getValue()));
        }
        sb.append("},\n  \"rows\": [\n");
        for (int k = 0; k < rows.size(); k++) {
            PodResult r = rows.get(k);
            sb.append("    {\"method\": ").append(Json.quote(r.method()))
                    .append(", \"setting\": ").append(Json.quote(r.setting()))
                    .append(", \"texts\": ").append(r.texts())
                    .append(", \"sharedLayerHeads\": ").append(r.sharedLayerHeads())
                    .append(", \"kvBytesFraction\": ").append(num(r.kvBytesFraction()))
                    .append(", \"endBytesFraction\": ").append(num(r.endBytesFraction()))
                    .append(", \"meanKl\": ").append(num(r.meanKl()))
                    .append(", \"maxKl\": ").append(num(r.maxKl()))
                    .append(", \"top1\": ").append(num(r.top1()))
                    .append(", \"pplFull\": ").append(num(r.pplFull()))
                    .append(", \"ppl\": ").append(num(r.ppl()))
                    .append(", \"deltaPpl\": ").append(num(r.deltaPpl())).append('}')
                    .append(k + 1 < rows.size() ? ",\n" : "\n");
        }
        return sb.append("  ]\n}\n").toString();
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }
}
