package io.kvslab.bench.footprint;

import io.kvslab.bench.report.Bytes;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import io.kvslab.DType;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PNG plot of the footprint: reserved bytes after compaction against context length (log-log) for one dtype (the
 * first in the table). Colour = model, line style = policy; circles are measured points, diamonds analytic ones;
 * the memory limit is dotted.
 */
public final class FootprintPlot {
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd),
        new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f), new Color(0xbcbd22), new Color(0x17becf)
    };
    private static final BasicStroke[] STYLES = {
        SeriesLines.SOLID, SeriesLines.DASH_DASH, SeriesLines.DOT_DOT, SeriesLines.DASH_DOT
    };

    private FootprintPlot() {}

    /** Writes the plot to {@code path} (PNG, whatever the file name's extension). */
    public static void write(List<FootprintRow> rows, long limitBytes, Path path) throws IOException {
        System.setProperty("java.awt.headless", "true");
        if (rows.isEmpty()) {
            throw new IOException("no rows to plot");
        }
        DType dtype = rows.getFirst().dtype();
        XYChart chart = new XYChartBuilder().width(1100).height(700)
                .title("KVSlab footprint (" + dtype.name().toLowerCase(Locale.ROOT) + "): reserved bytes after "
                        + "compression + compaction; circles measured, diamonds analytic")
                .xAxisTitle("context length (tokens)").yAxisTitle("reserved (GiB)").build();
        chart.getStyler().setXAxisLogarithmic(true).setYAxisLogarithmic(true)
                .setLegendPosition(Styler.LegendPosition.OutsideE).setMarkerSize(7)
                .setChartBackgroundColor(Color.WHITE);

        Map<String, Integer> modelColour = new LinkedHashMap<>();
        Map<String, Integer> policyStyle = new LinkedHashMap<>();
        Map<String, List<FootprintRow>> bySeries = new LinkedHashMap<>();
        double minX = Double.MAX_VALUE;
        double maxX = 0;
        for (FootprintRow r : rows) {
            if (r.dtype() != dtype) {
                continue;
            }
            modelColour.putIfAbsent(r.model(), modelColour.size());
            policyStyle.putIfAbsent(r.policy(), policyStyle.size());
            bySeries.computeIfAbsent(r.model() + " " + r.policy(), k -> new ArrayList<>()).add(r);
            minX = Math.min(minX, r.contextTokens());
            maxX = Math.max(maxX, r.contextTokens());
        }
        for (Map.Entry<String, List<FootprintRow>> e : bySeries.entrySet()) {
            FootprintRow first = e.getValue().getFirst();
            Color c = PALETTE[modelColour.get(first.model()) % PALETTE.length];
            BasicStroke style = STYLES[policyStyle.get(first.policy()) % STYLES.length];
            List<FootprintRow> measured = e.getValue().stream().filter(FootprintRow::measured).toList();
            List<FootprintRow> analytic = e.getValue().stream().filter(r -> !r.measured()).toList();
            boolean legendShown = false;
            if (!measured.isEmpty()) {
                series(chart, e.getKey(), measured, c, style, SeriesMarkers.CIRCLE, true);
                legendShown = true;
            }
            if (!analytic.isEmpty()) {
                // Start at the last measured point so that the line continues.
                List<FootprintRow> pts = new ArrayList<>();
                if (!measured.isEmpty()) {
                    pts.add(measured.getLast());
                }
                pts.addAll(analytic);
                series(chart, legendShown ? e.getKey() + " (analytic)" : e.getKey(), pts, c, style,
                        SeriesMarkers.DIAMOND, !legendShown);
            }
        }
        if (limitBytes < Long.MAX_VALUE && maxX > 0) {
            XYSeries lim = chart.addSeries("memory limit " + Bytes.human(limitBytes), new double[] {minX, maxX},
                    new double[] {gib(limitBytes), gib(limitBytes)});
            lim.setLineColor(Color.BLACK);
            lim.setLineStyle(SeriesLines.DOT_DOT);
            lim.setMarker(SeriesMarkers.NONE);
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(path)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }

    private static void series(XYChart chart, String name, List<FootprintRow> pts, Color c, BasicStroke style,
                               org.knowm.xchart.style.markers.Marker marker, boolean inLegend) {
        double[] x = new double[pts.size()];
        double[] y = new double[pts.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = pts.get(i).contextTokens();
            y[i] = gib(pts.get(i).reservedBytes());
        }
        XYSeries s = chart.addSeries(name, x, y);
        s.setLineColor(c);
        s.setMarkerColor(c);
        s.setMarker(marker);
        s.setLineStyle(style);
        s.setShowInLegend(inLegend);
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
