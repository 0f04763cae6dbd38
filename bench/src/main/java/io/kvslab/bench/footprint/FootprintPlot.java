package io.kvslab.bench.footprint;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

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
 * PNG plot of the footprint: reserved bytes against context length (log-log), one colour per (model, dtype,
 * policy); measured points solid with circles, analytic points dashed with diamonds; the memory limit dotted.
 */
public final class FootprintPlot {
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd),
        new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f), new Color(0xbcbd22), new Color(0x17becf)
    };

    private FootprintPlot() {}

    /** Writes the plot to {@code path} (PNG, whatever the file name's extension). */
    public static void write(List<FootprintRow> rows, long limitBytes, Path path) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(1100).height(700)
                .title("KVSlab footprint: reserved native bytes after compression + compaction")
                .xAxisTitle("context length (tokens)").yAxisTitle("reserved (GiB)").build();
        chart.getStyler().setXAxisLogarithmic(true).setYAxisLogarithmic(true)
                .setLegendPosition(Styler.LegendPosition.OutsideE).setMarkerSize(7)
                .setChartBackgroundColor(Color.WHITE);

        Map<String, List<FootprintRow>> bySeries = new LinkedHashMap<>();
        for (FootprintRow r : rows) {
            String key = r.model() + " " + r.dtype().name().toLowerCase(Locale.ROOT) + " " + r.policy();
            bySeries.computeIfAbsent(key, k -> new ArrayList<>()).add(r);
        }
        double minX = Double.MAX_VALUE;
        double maxX = 0;
        int color = 0;
        for (Map.Entry<String, List<FootprintRow>> e : bySeries.entrySet()) {
            Color c = PALETTE[color++ % PALETTE.length];
            List<FootprintRow> measured = e.getValue().stream().filter(FootprintRow::measured).toList();
            List<FootprintRow> analytic = e.getValue().stream().filter(r -> !r.measured()).toList();
            if (!measured.isEmpty()) {
                series(chart, e.getKey(), measured, c, true);
            }
            if (!analytic.isEmpty()) {
                // Start the dashed line at the last measured point so that the two halves connect.
                List<FootprintRow> pts = new ArrayList<>();
                if (!measured.isEmpty()) {
                    pts.add(measured.getLast());
                }
                pts.addAll(analytic);
                series(chart, e.getKey() + " (analytic)", pts, c, false);
            }
            for (FootprintRow r : e.getValue()) {
                minX = Math.min(minX, r.contextTokens());
                maxX = Math.max(maxX, r.contextTokens());
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

    private static void series(XYChart chart, String name, List<FootprintRow> pts, Color c, boolean measured) {
        double[] x = new double[pts.size()];
        double[] y = new double[pts.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = pts.get(i).contextTokens();
            y[i] = gib(pts.get(i).reservedBytes());
        }
        XYSeries s = chart.addSeries(name, x, y);
        s.setLineColor(c);
        s.setMarkerColor(c);
        s.setMarker(measured ? SeriesMarkers.CIRCLE : SeriesMarkers.DIAMOND);
        s.setLineStyle(measured ? SeriesLines.SOLID : SeriesLines.DASH_DASH);
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }

    private static String tokens(double t) {
        if (t >= 1 << 20 && t % (1 << 20) == 0) {
            return (long) t / (1 << 20) + "M";
        }
        if (t >= 1 << 10) {
            return Math.round(t / 1024) + "k";
        }
        return Long.toString(Math.round(t));
    }
}
