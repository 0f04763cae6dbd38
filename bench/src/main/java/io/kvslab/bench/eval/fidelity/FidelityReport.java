package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.report.Json;

import io.kvslab.bench.report.Charts;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@link FidelityEval} measured, as JSON (for machines), a Markdown table, and PNG plots of each metric against
 * the KV bytes retained.
 *
 * @param model         the model file name
 * @param config        the settings
 * @param texts         texts evaluated
 * @param meanContext   mean context length in tokens
 * @param results       one row per (policy, budget)
 * @param heads         CriticalKV against its base selection per budget
 * @param seconds       wall time of the evaluation
 */
public record FidelityReport(String model, FidelityConfig config, int texts, double meanContext,
                             List<BudgetResult> results, List<HeadComparison> heads, double seconds) {
    public FidelityReport {
        results = List.copyOf(results);
        heads = List.copyOf(heads);
    }

    /** The row of one policy at one budget, or null. */
    public BudgetResult result(String policy, String budget) {
        for (BudgetResult r : results) {
            if (r.policy().equals(policy) && r.budget().equals(budget)) {
                return r;
            }
        }
        return null;
    }

    public String toJson() {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append("  \"model\": ").append(Json.quote(model)).append(",\n");
        sb.append("  \"texts\": ").append(texts).append(",\n");
        sb.append("  \"meanContextTokens\": ").append(num(meanContext)).append(",\n");
        sb.append("  \"config\": {\"stories\": ").append(config.stories())
                .append(", \"continuation\": ").append(config.continuation())
                .append(", \"minContext\": ").append(config.minContext())
                .append(", \"maxContext\": ").append(config.maxContext() == Integer.MAX_VALUE ? "null"
                        : String.valueOf(config.maxContext()))
                .append(", \"window\": ").append(config.window())
                .append(", \"tokensPerBlock\": ").append(config.tokensPerBlock())
                .append(", \"attention\": ").append(Json.quote(config.attention()))
                .append(", \"pooling\": ").append(Json.quote(config.pooling().name().toLowerCase(Locale.ROOT)))
                .append(", \"kernel\": ").append(config.kernel())
                .append(", \"fractions\": ").append(config.fractions())
                .append(", \"dynamic\": ").append(config.dynamic())
                .append(", \"policies\": [");
        for (int i = 0; i < config.policies().size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(Json.quote(config.policies().get(i)));
        }
        sb.append("]},\n  \"seconds\": ").append(num(seconds)).append(",\n  \"results\": [\n");
        for (int i = 0; i < results.size(); i++) {
            BudgetResult r = results.get(i);
            sb.append("    {\"policy\": ").append(Json.quote(r.policy()))
                    .append(", \"budget\": ").append(Json.quote(r.budget()))
                    .append(", \"texts\": ").append(r.texts())
                    .append(", \"keptRows\": ").append(num(r.keptRows()))
                    .append(", \"kvBytes\": ").append(num(r.kvBytes()))
                    .append(", \"kvBytesFraction\": ").append(num(r.kvBytesFraction()))
                    .append(", \"meanKl\": ").append(num(r.meanKl()))
                    .append(", \"maxKl\": ").append(num(r.maxKl()))
                    .append(", \"top1\": ").append(num(r.top1()))
                    .append(", \"pplFull\": ").append(num(r.pplFull()))
                    .append(", \"pplCompressed\": ").append(num(r.pplCompressed()))
                    .append(", \"deltaPpl\": ").append(num(r.deltaPpl()))
                    .append(", \"meanPerturbation\": ").append(num(r.meanPerturbation()))
                    .append(", \"meanWindowPerturbation\": ").append(num(r.meanWindowPerturbation())).append('}')
                    .append(i + 1 < results.size() ? ",\n" : "\n");
        }
        sb.append("  ],\n  \"criticalHeads\": [\n");
        for (int i = 0; i < heads.size(); i++) {
            HeadComparison h = heads.get(i);
            sb.append("    {\"policy\": ").append(Json.quote(h.policy()))
                    .append(", \"base\": ").append(Json.quote(h.base()))
                    .append(", \"budget\": ").append(Json.quote(h.budget()))
                    .append(", \"queries\": ").append(Json.quote(h.queries()))
                    .append(", \"heads\": ").append(h.heads())
                    .append(", \"lower\": ").append(h.lower())
                    .append(", \"equal\": ").append(h.equal())
                    .append(", \"fractionLower\": ").append(num(h.fractionLower()))
                    .append(", \"instances\": ").append(h.instances())
                    .append(", \"instancesLower\": ").append(h.instancesLower())
                    .append(", \"instancesEqual\": ").append(h.instancesEqual())
                    .append(", \"instanceFractionLower\": ").append(num(h.instanceFractionLower()))
                    .append(", \"instanceFractionLowerWhereDifferent\": ")
                    .append(num(h.instanceFractionLowerWhereDifferent())).append('}')
                    .append(i + 1 < heads.size() ? ",\n" : "\n");
        }
        return sb.append("  ]\n}\n").toString();
    }

    /** Markdown tables: the metrics per (policy, budget), then the CriticalKV head fractions. */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%d texts, mean context %.0f tokens, %d continuation tokens, window %d, "
                        + "%d tokens/block, %.1f s%n%n", texts, meanContext, config.continuation(), config.window(),
                config.tokensPerBlock(), seconds));
        sb.append("| policy | budget | rows kept | KV bytes kept | mean KL (nats) | max KL | top-1 agree | "
                + "ppl full | ppl compressed | delta ppl | perturbation | window perturbation |\n");
        sb.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (BudgetResult r : results) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %.1f%% | %.1f%% (%.1f KiB) | %.4f | %.3f | %.1f%% | "
                            + "%.3f | %.3f | %+.3f | %.4f | %.4f |%n", r.policy(), r.budget(), 100 * r.keptRows(),
                    100 * r.kvBytesFraction(), r.kvBytes() / 1024, r.meanKl(), r.maxKl(), 100 * r.top1(),
                    r.pplFull(), r.pplCompressed(), r.deltaPpl(), r.meanPerturbation(),
                    r.meanWindowPerturbation()));
        }
        if (!heads.isEmpty()) {
            sb.append("\n| CriticalKV vs base | budget | queries | (layer, head) pairs lower | equal | "
                    + "(text, layer, head) lower | equal | lower where different |\n");
            sb.append("|---|---|---|---:|---:|---:|---:|---:|\n");
            for (HeadComparison h : heads) {
                sb.append(String.format(Locale.ROOT, "| %s vs %s | %s | %s | %d/%d (%.1f%%) | %d | %d/%d (%.1f%%) | "
                                + "%d | %.1f%% |%n", h.policy(), h.base(), h.budget(), h.queries(), h.lower(), h.heads(),
                        100 * h.fractionLower(), h.equal(), h.instancesLower(), h.instances(),
                        100 * h.instanceFractionLower(), h.instancesEqual(),
                        100 * h.instanceFractionLowerWhereDifferent()));
            }
        }
        return sb.toString();
    }

    /** Writes kl-vs-bytes.png, top1-vs-bytes.png, ppl-vs-bytes.png and perturbation-vs-bytes.png into {@code dir}. */
    public List<Path> writePlots(Path dir) throws IOException {
        Map<String, List<BudgetResult>> byPolicy = new LinkedHashMap<>();
        for (BudgetResult r : results) {
            byPolicy.computeIfAbsent(r.policy(), k -> new ArrayList<>()).add(r);
        }
        String x = "KV bytes kept (% of the full context's store bytes)";
        List<Path> files = new ArrayList<>();
        files.add(plot(dir.resolve("kl-vs-bytes.png"), byPolicy, "Mean KL(full || compressed) vs KV bytes", x,
                "mean KL (nats)", true, BudgetResult::meanKl));
        files.add(plot(dir.resolve("top1-vs-bytes.png"), byPolicy, "Top-1 agreement vs KV bytes", x,
                "top-1 agreement (%)", false, r -> 100 * r.top1()));
        files.add(plot(dir.resolve("ppl-vs-bytes.png"), byPolicy, "Perplexity increase vs KV bytes", x,
                "delta perplexity", false, BudgetResult::deltaPpl));
        files.add(plot(dir.resolve("perturbation-vs-bytes.png"), byPolicy,
                "Per-head output perturbation ||(o - o') W_o^h||_1 vs KV bytes", x, "mean perturbation", true,
                BudgetResult::meanPerturbation));
        return files;
    }

    private Path plot(Path file, Map<String, List<BudgetResult>> byPolicy, String title, String xLabel,
                      String yLabel, boolean logY, java.util.function.ToDoubleFunction<BudgetResult> y)
            throws IOException {
        XYChart chart = new XYChartBuilder().width(1000).height(600).title(title + " (" + model + ", " + texts
                + " texts)").xAxisTitle(xLabel).yAxisTitle(yLabel + (logY ? ", log scale" : "")).build();
        chart.getStyler().setYAxisLogarithmic(logY).setLegendPosition(Styler.LegendPosition.OutsideE)
                .setMarkerSize(9).setChartBackgroundColor(java.awt.Color.WHITE);
        chart.getStyler().setxAxisTickLabelsFormattingFunction(Charts::plain);
        if (logY) {
            chart.getStyler().setYAxisDecimalPattern("0.####");   // a formatting function would bypass the decades
        } else {
            chart.getStyler().setyAxisTickLabelsFormattingFunction(Charts::plain);
        }
        Map<String, Charts.Points> series = new LinkedHashMap<>();
        for (Map.Entry<String, List<BudgetResult>> e : byPolicy.entrySet()) {
            List<BudgetResult> rs = e.getValue();
            double[] xs = new double[rs.size()];
            double[] ys = new double[rs.size()];
            for (int i = 0; i < rs.size(); i++) {
                xs[i] = 100 * rs.get(i).kvBytesFraction();
                double v = y.applyAsDouble(rs.get(i));
                ys[i] = logY && !(v > 0) ? Double.NaN : v;   // a log axis cannot show 0: the point is left out
            }
            series.put(e.getKey(), new Charts.Points(xs, ys));
        }
        if (logY) {
            // under two decades there would be one labelled tick or none: label 2..9 of each decade too
            double lo = Double.POSITIVE_INFINITY;
            double hi = 0;
            for (Charts.Points p : series.values()) {
                for (double v : p.y()) {
                    if (v > 0) {
                        lo = Math.min(lo, v);
                        hi = Math.max(hi, v);
                    }
                }
            }
            chart.getStyler().setYAxisLogarithmicDecadeOnly(!(hi > 0 && hi / lo < 100));
        }
        int i = 0;
        for (Map.Entry<String, Charts.Points> e : Charts.mergeIdentical(series).entrySet()) {
            XYSeries s = chart.addSeries(e.getKey(), e.getValue().x(), e.getValue().y());
            s.setLineColor(Charts.PALETTE[i % Charts.PALETTE.length]);
            s.setMarkerColor(Charts.PALETTE[i % Charts.PALETTE.length]);
            s.setMarker(Charts.MARKERS[i % Charts.MARKERS.length]);
            s.setLineStyle(Charts.LINES[i % Charts.LINES.length]);
            i++;
        }
        Charts.writePng(chart, file);
        return file;
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }
}
