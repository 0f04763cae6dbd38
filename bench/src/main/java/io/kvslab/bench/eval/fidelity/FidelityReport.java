package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.report.Json;

import io.kvslab.bench.report.Charts;
import org.knowm.xchart.AnnotationTextPanel;
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
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * What {@link FidelityEval} measured, as JSON (for machines), a Markdown table, and PNG plots of each metric against
 * the KV bytes retained.
 *
 * @param model         the model file name
 * @param config        the settings
 * @param texts         texts evaluated
 * @param meanContext   mean context length in tokens
 * @param results       one row per (policy, element type, budget)
 * @param differences   each policy minus its base per element type and budget, paired over texts
 * @param heads         CriticalKV against its base selection per budget
 * @param seconds       wall time of the evaluation
 */
public record FidelityReport(String model, FidelityConfig config, int texts, double meanContext,
                             List<BudgetResult> results, List<PairedDifference> differences,
                             List<HeadComparison> heads, double seconds) {
    public FidelityReport {
        results = List.copyOf(results);
        differences = List.copyOf(differences);
        heads = List.copyOf(heads);
    }

    /** The f32 row of one policy at one budget, or null. */
    public BudgetResult result(String policy, String budget) {
        return result(policy, "f32", budget);
    }

    /** The row of one policy at one budget on one element type, or null. */
    public BudgetResult result(String policy, String dtype, String budget) {
        for (BudgetResult r : results) {
            if (r.policy().equals(policy) && r.dtype().equals(dtype) && r.budget().equals(budget)) {
                return r;
            }
        }
        return null;
    }

    /** The paired difference of {@code policy} and its base at one budget on one element type, or null. */
    public PairedDifference difference(String policy, String dtype, String budget) {
        for (PairedDifference d : differences) {
            if (d.policy().equals(policy) && d.dtype().equals(dtype) && d.budget().equals(budget)) {
                return d;
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
                .append(", \"queryPrecision\": ").append(Json.quote(config.queryPrecision().name()
                        .toLowerCase(Locale.ROOT)))
                .append(", \"pooling\": ").append(Json.quote(config.pooling().name().toLowerCase(Locale.ROOT)))
                .append(", \"kernel\": ").append(config.kernel())
                .append(", \"fractions\": ").append(config.fractions())
                .append(", \"dynamic\": ").append(config.dynamic())
                .append(", \"kvDtypes\": [").append(String.join(", ", config.kvDtypes().stream()
                        .map(d -> Json.quote(FidelityEval.dtypeName(d))).toList())).append(']')
                .append(", \"bootstrapResamples\": ").append(io.kvslab.bench.eval.Bootstrap.RESAMPLES)
                .append(", \"policies\": [");
        for (int i = 0; i < config.policies().size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(Json.quote(config.policies().get(i)));
        }
        sb.append("]},\n  \"seconds\": ").append(num(seconds)).append(",\n  \"results\": [\n");
        for (int i = 0; i < results.size(); i++) {
            BudgetResult r = results.get(i);
            sb.append("    {\"policy\": ").append(Json.quote(r.policy()))
                    .append(", \"dtype\": ").append(Json.quote(r.dtype()))
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
                    .append(", \"meanWindowPerturbation\": ").append(num(r.meanWindowPerturbation()))
                    .append(", \"meanKlInterval\": ").append(interval(r.klInterval()))
                    .append(", \"top1Interval\": ").append(interval(r.top1Interval()))
                    .append(", \"deltaPplInterval\": ").append(interval(r.deltaPplInterval())).append('}')
                    .append(i + 1 < results.size() ? ",\n" : "\n");
        }
        sb.append("  ],\n  \"differences\": [\n");
        for (int i = 0; i < differences.size(); i++) {
            PairedDifference d = differences.get(i);
            sb.append("    {\"policy\": ").append(Json.quote(d.policy()))
                    .append(", \"base\": ").append(Json.quote(d.base()))
                    .append(", \"dtype\": ").append(Json.quote(d.dtype()))
                    .append(", \"budget\": ").append(Json.quote(d.budget()))
                    .append(", \"texts\": ").append(d.texts())
                    .append(", \"meanKl\": ").append(num(d.meanKl()))
                    .append(", \"meanKlInterval\": ").append(interval(d.klInterval()))
                    .append(", \"top1\": ").append(num(d.top1()))
                    .append(", \"top1Interval\": ").append(interval(d.top1Interval()))
                    .append(", \"deltaPpl\": ").append(num(d.deltaPpl()))
                    .append(", \"deltaPplInterval\": ").append(interval(d.deltaPplInterval())).append('}')
                    .append(i + 1 < differences.size() ? ",\n" : "\n");
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

    /**
     * Markdown tables: the metrics per (policy, element type, budget) with 95% bootstrap intervals, each policy minus
     * its base, then the CriticalKV head fractions. An interval that includes zero is marked with {@value #ZERO}.
     */
    public String table() {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%d texts, mean context %.0f tokens, %d continuation tokens, window %d, "
                        + "%d tokens/block, %.1f s; [low, high] = 95%% bootstrap interval over texts (%d resamples), "
                        + "%s = it includes zero%n%n", texts, meanContext, config.continuation(), config.window(),
                config.tokensPerBlock(), seconds, io.kvslab.bench.eval.Bootstrap.RESAMPLES, ZERO));
        sb.append("| policy | KV dtype | budget | rows kept | KV bytes kept | mean KL (nats) | max KL | top-1 agree | "
                + "ppl full | ppl compressed | delta ppl | perturbation | window perturbation |\n");
        sb.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (BudgetResult r : results) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %.1f%% | %.1f%% (%.1f KiB) | %.4f %s%s | %.3f | "
                            + "%.1f%% %s%s | %.3f | %.3f | %+.3f %s%s | %.4f | %.4f |%n", r.policy(), r.dtype(),
                    r.budget(), 100 * r.keptRows(), 100 * r.kvBytesFraction(), r.kvBytes() / 1024, r.meanKl(),
                    r.klInterval().format("%.4f"), mark(r.klInterval()), r.maxKl(), 100 * r.top1(),
                    scaled(r.top1Interval(), 100).format("%.1f"), mark(r.top1Interval()), r.pplFull(),
                    r.pplCompressed(), r.deltaPpl(), r.deltaPplInterval().format("%+.3f"),
                    mark(r.deltaPplInterval()), r.meanPerturbation(), r.meanWindowPerturbation()));
        }
        if (!differences.isEmpty()) {
            sb.append("\n| policy - base | KV dtype | budget | mean KL difference | top-1 difference (points) | "
                    + "delta ppl difference |\n");
            sb.append("|---|---|---|---:|---:|---:|\n");
            for (PairedDifference d : differences) {
                sb.append(String.format(Locale.ROOT, "| %s - %s | %s | %s | %+.4f %s%s | %+.1f %s%s | %+.3f %s%s |%n",
                        d.policy(), d.base(), d.dtype(), d.budget(), d.meanKl(), d.klInterval().format("%+.4f"),
                        mark(d.klInterval()), 100 * d.top1(), scaled(d.top1Interval(), 100).format("%+.1f"),
                        mark(d.top1Interval()), d.deltaPpl(), d.deltaPplInterval().format("%+.3f"),
                        mark(d.deltaPplInterval())));
            }
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
            byPolicy.computeIfAbsent(r.series(), k -> new ArrayList<>()).add(r);
        }
        String x = "KV bytes held by the store (% of the full context's f32 store bytes)";
        List<Path> files = new ArrayList<>();
        files.add(plot(dir.resolve("kl-vs-bytes.png"), byPolicy, "Mean KL(full || compressed) vs KV bytes, with "
                + "the Pareto front", x, "mean KL (nats)", true, true, BudgetResult::meanKl));
        files.add(plot(dir.resolve("top1-vs-bytes.png"), byPolicy, "Top-1 agreement vs KV bytes", x,
                "top-1 agreement (%)", false, false, r -> 100 * r.top1()));
        files.add(plot(dir.resolve("ppl-vs-bytes.png"), byPolicy, "Perplexity increase vs KV bytes", x,
                "delta perplexity", false, false, BudgetResult::deltaPpl));
        files.add(plot(dir.resolve("perturbation-vs-bytes.png"), byPolicy,
                "Per-head output perturbation ||(o - o') W_o^h||_1 vs KV bytes", x, "mean perturbation", true, false,
                BudgetResult::meanPerturbation));
        return files;
    }

    /** The one point named on the plots with several element types (DBudgetKV's layer budgets, CriticalKV's rows). */
    static final String LABELLED_POLICY = "criticaldbudgetkv";
    static final String LABELLED_DTYPE = "q8_0";

    private Path plot(Path file, Map<String, List<BudgetResult>> byPolicy, String title, String xLabel,
                      String yLabel, boolean logY, boolean front, java.util.function.ToDoubleFunction<BudgetResult> y)
            throws IOException {
        Set<String> types = new LinkedHashSet<>();
        byPolicy.values().forEach(rs -> types.add(rs.getFirst().dtype()));
        boolean oneType = types.size() == 1;
        // several element types: colour says the policy, marker and line the type, and the legend lists the policies
        // (their series on the first type) and each other type once (its whole-cache point), not every pair
        XYChart chart = new XYChartBuilder().width(1100).height(oneType ? 600 : 720).title(title + " (" + model
                + ", " + texts + " texts)").xAxisTitle(xLabel + (oneType ? "" : "; colour = policy, marker and line = "
                        + "KV dtype")).yAxisTitle(yLabel + (logY ? ", log scale" : "")).build();
        chart.getStyler().setYAxisLogarithmic(logY).setLegendPosition(Styler.LegendPosition.OutsideE)
                .setMarkerSize(9).setChartBackgroundColor(java.awt.Color.WHITE);
        chart.getStyler().setxAxisTickLabelsFormattingFunction(Charts::plain);
        if (logY) {
            chart.getStyler().setYAxisDecimalPattern("0.#########");   // a formatting function would bypass the decades; 1e-9 still shows
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
            if (java.util.Arrays.stream(ys).anyMatch(Double::isFinite)) {
                series.put(e.getKey(), new Charts.Points(xs, ys)); // a series with nothing to show stays off the legend
            }
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
        List<String> policyOrder = new ArrayList<>();
        for (List<BudgetResult> rs : byPolicy.values()) {
            if (!policyOrder.contains(rs.getFirst().policy())) {
                policyOrder.add(rs.getFirst().policy());
            }
        }
        List<String> dtypeOrder = List.copyOf(types);
        int i = 0;
        for (Map.Entry<String, Charts.Points> e : Charts.mergeIdentical(series).entrySet()) {
            BudgetResult first = byPolicy.get(e.getKey().split(" = ")[0]).getFirst();
            boolean whole = first.policy().equals(FidelityEval.FULL);
            String name = oneType ? e.getKey() : String.join(" = ", java.util.Arrays.stream(e.getKey().split(" = "))
                    .map(n -> n.startsWith(FidelityEval.FULL + " ") ? n.substring(FidelityEval.FULL.length() + 1)
                            + " (whole cache)" : n).toList());
            XYSeries s = chart.addSeries(name, e.getValue().x(), e.getValue().y());
            int colour = oneType ? i : policyOrder.indexOf(first.policy());
            int style = oneType ? i : dtypeOrder.indexOf(first.dtype());
            s.setLineColor(Charts.PALETTE[colour % Charts.PALETTE.length]);
            s.setMarkerColor(Charts.PALETTE[colour % Charts.PALETTE.length]);
            s.setMarker(Charts.MARKERS[style % Charts.MARKERS.length]);
            s.setLineStyle(Charts.LINES[style % Charts.LINES.length]);
            s.setShowInLegend(oneType || whole || first.dtype().equals(dtypeOrder.getFirst()));
            if (first.policy().equals(LABELLED_POLICY) && first.dtype().equals(LABELLED_DTYPE)
                    && !oneType && Double.isFinite(e.getValue().y()[0])) {
                // the issue asks for this combined policy "on the Pareto plot with q8_0": name its point on the plot
                chart.addAnnotation(new AnnotationTextPanel("\u2190 CriticalDBudgetKV, " + LABELLED_DTYPE,
                        e.getValue().x()[0] + 0.6, e.getValue().y()[0], false));
            }
            i++;
        }
        if (front) {
            Charts.Points f = paretoFront(series.values());
            if (f.x().length > 0) {
                XYSeries s = chart.addSeries("Pareto front", f.x(), f.y());
                s.setLineColor(java.awt.Color.BLACK);
                s.setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
                s.setLineStyle(new java.awt.BasicStroke(1f));
            }
        }
        Charts.writePng(chart, file);
        return file;
    }

    /**
     * The points no other point beats on both axes (fewer bytes and lower y, one of them strictly), by increasing x:
     * the best y reachable at each byte budget among the measured configurations.
     */
    static Charts.Points paretoFront(java.util.Collection<Charts.Points> all) {
        List<double[]> pts = new ArrayList<>();
        for (Charts.Points p : all) {
            for (int k = 0; k < p.x().length; k++) {
                if (Double.isFinite(p.x()[k]) && Double.isFinite(p.y()[k])) {
                    pts.add(new double[]{p.x()[k], p.y()[k]});
                }
            }
        }
        pts.sort((a, b) -> a[0] != b[0] ? Double.compare(a[0], b[0]) : Double.compare(a[1], b[1]));
        List<double[]> front = new ArrayList<>();
        double best = Double.POSITIVE_INFINITY;
        for (double[] p : pts) {
            if (p[1] < best) {
                front.add(p);
                best = p[1];
            }
        }
        double[] xs = new double[front.size()];
        double[] ys = new double[front.size()];
        for (int k = 0; k < xs.length; k++) {
            xs[k] = front.get(k)[0];
            ys[k] = front.get(k)[1];
        }
        return new Charts.Points(xs, ys);
    }

    /** Marks an interval that includes zero in the tables. */
    public static final String ZERO = "(0 in CI)";

    private static String mark(io.kvslab.bench.eval.Interval i) {
        return i.includesZero() ? " " + ZERO : "";
    }

    private static io.kvslab.bench.eval.Interval scaled(io.kvslab.bench.eval.Interval i, double factor) {
        return new io.kvslab.bench.eval.Interval(i.low() * factor, i.high() * factor);
    }

    private static String interval(io.kvslab.bench.eval.Interval i) {
        return "[" + num(i.low()) + ", " + num(i.high()) + "]";
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }
}
