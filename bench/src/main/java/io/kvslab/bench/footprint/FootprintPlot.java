package io.kvslab.bench.footprint;

import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Charts;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PNG plot of the footprint: reserved bytes after compaction against context length (log-log, decades labelled) for
 * one dtype (the first in the table). Colour = model, marker and line style = policy; series with identical points
 * (same geometry, or policies that keep the same rows) share one legend entry "A = B"; black crosses mark the points
 * measured on a real store (the others are computed); the memory limit is dotted.
 */
public final class FootprintPlot {
    private FootprintPlot() {}

    /** Writes the plot to {@code path} (PNG, whatever the file name's extension). */
    public static void write(List<FootprintRow> rows, long limitBytes, Path path) throws IOException {
        if (rows.isEmpty()) {
            throw new IOException("no rows to plot");
        }
        KvDtypes dtype = rows.getFirst().dtype();
        XYChart chart = new XYChartBuilder().width(1200).height(720)
                .title("KVSlab footprint (" + dtype.label() + "): reserved bytes after "
                        + "compression + compaction")
                .xAxisTitle("context length (tokens)").yAxisTitle("reserved (GiB)").build();
        chart.getStyler().setXAxisLogarithmic(true).setYAxisLogarithmic(true)
                .setLegendPosition(Styler.LegendPosition.OutsideE).setMarkerSize(8)
                .setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setXAxisDecimalPattern("#,###").setYAxisDecimalPattern("#,##0.###");

        Map<String, Integer> modelIndex = new LinkedHashMap<>();
        Map<String, Integer> policyIndex = new LinkedHashMap<>();
        Map<String, List<FootprintRow>> bySeries = new LinkedHashMap<>();
        List<FootprintRow> measured = new ArrayList<>();
        double minX = Double.MAX_VALUE;
        double maxX = 0;
        for (FootprintRow r : rows) {
            if (!r.dtype().equals(dtype)) {
                continue;
            }
            modelIndex.putIfAbsent(r.model(), modelIndex.size());
            policyIndex.putIfAbsent(r.policy(), policyIndex.size());
            bySeries.computeIfAbsent(r.model() + " " + r.policy(), k -> new ArrayList<>()).add(r);
            if (r.measured()) {
                measured.add(r);
            }
            minX = Math.min(minX, r.contextTokens());
            maxX = Math.max(maxX, r.contextTokens());
        }
        Map<String, Charts.Points> points = new LinkedHashMap<>();
        Map<String, FootprintRow> firstRow = new LinkedHashMap<>();
        bySeries.forEach((name, pts) -> {
            points.put(name, points(pts));
            firstRow.put(name, pts.getFirst());
        });
        for (Map.Entry<String, Charts.Points> e : Charts.mergeIdentical(points).entrySet()) {
            FootprintRow first = firstRow.get(e.getKey().split(" = ")[0]);
            int policy = policyIndex.get(first.policy());
            XYSeries s = chart.addSeries(label(e.getKey()), e.getValue().x(), e.getValue().y());
            Color c = Charts.PALETTE[modelIndex.get(first.model()) % Charts.PALETTE.length];
            s.setLineColor(c);
            s.setMarkerColor(c);
            s.setMarker(Charts.MARKERS[policy % Charts.MARKERS.length]);
            s.setLineStyle(Charts.LINES[policy % Charts.LINES.length]);
        }
        if (!measured.isEmpty()) {
            Charts.Points m = points(measured);
            XYSeries s = chart.addSeries("measured on a real store (others computed)", m.x(), m.y());
            s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            s.setMarker(SeriesMarkers.CROSS);
            s.setMarkerColor(Color.BLACK);
        }
        if (limitBytes < Long.MAX_VALUE && maxX > 0) {
            XYSeries lim = chart.addSeries("memory limit " + Bytes.human(limitBytes), new double[] {minX, maxX},
                    new double[] {gib(limitBytes), gib(limitBytes)});
            lim.setLineColor(Color.BLACK);
            lim.setLineStyle(SeriesLines.DOT_DOT);
            lim.setMarker(SeriesMarkers.NONE);
        }
        Charts.writePng(chart, path);
    }

    /** "A p = B p = A q = B q" -> "A = B: p, q" (series names are "model policy"; neither has spaces). */
    private static String label(String merged) {
        java.util.Set<String> models = new java.util.LinkedHashSet<>();
        java.util.Set<String> policies = new java.util.LinkedHashSet<>();
        for (String name : merged.split(" = ")) {
            int space = name.indexOf(' ');
            models.add(name.substring(0, space));
            policies.add(name.substring(space + 1));
        }
        return String.join(" = ", models) + ": " + String.join(", ", policies);
    }

    private static Charts.Points points(List<FootprintRow> pts) {
        double[] x = new double[pts.size()];
        double[] y = new double[pts.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = pts.get(i).contextTokens();
            y[i] = gib(pts.get(i).reservedBytes());
        }
        return new Charts.Points(x, y);
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
