package io.kvslab.bench.report;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.Marker;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What every bench PNG shares: a colour-blind-safe palette, markers and line styles that keep overlapping series
 * apart, tick labels people read (4k, 1M; 0.1, 10; on linear axes: a log axis keeps XChart's decade ticks and
 * takes a decimal pattern instead, since a formatting function replaces its tick placement), merging of series whose points are identical (one legend entry
 * "A = B" instead of one line hidden under another), and writing the PNG.
 */
public final class Charts {
    /** Okabe-Ito (its yellow replaced by olive, which stays visible on white), then two extras. */
    public static final Color[] PALETTE = {
        new Color(0x0072B2), new Color(0xE69F00), new Color(0x009E73), new Color(0xD55E00), new Color(0xCC79A7),
        new Color(0x56B4E9), new Color(0x000000), new Color(0x999933), new Color(0x7F7F7F), new Color(0x8C564B)
    };
    public static final Marker[] MARKERS = {
        SeriesMarkers.CIRCLE, SeriesMarkers.SQUARE, SeriesMarkers.TRIANGLE_UP, SeriesMarkers.DIAMOND,
        SeriesMarkers.TRIANGLE_DOWN, SeriesMarkers.CROSS, SeriesMarkers.PLUS, SeriesMarkers.TRAPEZOID
    };
    public static final BasicStroke[] LINES = {
        SeriesLines.SOLID, SeriesLines.DASH_DASH, SeriesLines.DOT_DOT, SeriesLines.DASH_DOT
    };

    private Charts() {}

    /** One series' points. */
    public record Points(double[] x, double[] y) {
        boolean sameAs(Points o) {
            return Arrays.equals(x, o.x) && Arrays.equals(y, o.y);
        }
    }

    /**
     * Groups series with identical points, keeping first-seen order: each key of the result joins the names of the
     * series it stands for with " = ".
     */
    public static Map<String, Points> mergeIdentical(Map<String, Points> series) {
        List<List<String>> names = new ArrayList<>();
        List<Points> points = new ArrayList<>();
        outer:
        for (Map.Entry<String, Points> e : series.entrySet()) {
            for (int i = 0; i < points.size(); i++) {
                if (points.get(i).sameAs(e.getValue())) {
                    names.get(i).add(e.getKey());
                    continue outer;
                }
            }
            names.add(new ArrayList<>(List.of(e.getKey())));
            points.add(e.getValue());
        }
        Map<String, Points> out = new LinkedHashMap<>();
        for (int i = 0; i < points.size(); i++) {
            out.put(String.join(" = ", names.get(i)), points.get(i));
        }
        return out;
    }

    /** Token counts as people write them: 512, 4k, 32k, 1M (binary multiples). */
    public static String tokens(double v) {
        long n = Math.round(v);
        if (n >= 1 << 20 && n % (1 << 20) == 0) {
            return (n >> 20) + "M";
        }
        if (n >= 1 << 10 && n % (1 << 10) == 0) {
            return (n >> 10) + "k";
        }
        if (n >= 1_000_000) {
            return trim(n / 1e6) + "M";
        }
        return n >= 1000 ? trim(n / 1e3) + "k" : Long.toString(n);
    }

    /** A plain number without exponent notation or trailing zeros: 0.01, 0.5, 10, 1000. */
    public static String plain(double v) {
        return trim(v);
    }

    private static String trim(double v) {
        String s = String.format(Locale.ROOT, "%.4f", v);
        s = s.replaceAll("0+$", "");
        return s.endsWith(".") ? s.substring(0, s.length() - 1) : s;
    }

    /** Writes a chart as PNG, creating the directory. */
    public static void writePng(Chart<?, ?> chart, Path path) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(path)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }
}
