package io.kvslab.bench.eval.fidelity;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A small line-and-marker chart written as PNG with plain Java2D (no plotting dependency): one polyline per series,
 * points sorted by x, linear x axis, linear or log10 y axis, a legend. Enough for "metric vs KV bytes" plots.
 */
final class PngChart {
    /** One named series of (x, y) points. */
    record Series(String name, double[] x, double[] y) {
        Series {
            if (x.length != y.length) {
                throw new IllegalArgumentException("series " + name + ": " + x.length + " x values for " + y.length
                        + " y values");
            }
        }
    }

    private static final Color[] PALETTE = {
            new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf), new Color(0x7f7f7f)};

    private final String title;
    private final String xLabel;
    private final String yLabel;
    private final boolean logY;
    private final List<Series> series = new ArrayList<>();

    PngChart(String title, String xLabel, String yLabel, boolean logY) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
        this.logY = logY;
    }

    PngChart add(Series s) {
        series.add(s);
        return this;
    }

    /** Renders at {@code width x height} pixels and writes a PNG. */
    void write(Path file, int width, int height) throws IOException {
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            draw(g, width, height);
        } finally {
            g.dispose();
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        if (!ImageIO.write(img, "png", file.toFile())) {
            throw new IOException("no PNG writer available in this JVM");
        }
    }

    private double ty(double y) {
        return logY ? Math.log10(y) : y;
    }

    private void draw(Graphics2D g, int w, int h) {
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
        double yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (int i = 0; i < s.x().length; i++) {
                if (!usable(s.y()[i]) || !Double.isFinite(s.x()[i])) {
                    continue;
                }
                xMin = Math.min(xMin, s.x()[i]);
                xMax = Math.max(xMax, s.x()[i]);
                yMin = Math.min(yMin, ty(s.y()[i]));
                yMax = Math.max(yMax, ty(s.y()[i]));
            }
        }
        if (!(xMin <= xMax)) {
            xMin = 0;
            xMax = 1;
            yMin = 0;
            yMax = 1;
        }
        if (xMax - xMin < 1e-12) {
            xMin -= 0.5;
            xMax += 0.5;
        }
        if (yMax - yMin < 1e-12) {
            yMin -= 0.5;
            yMax += 0.5;
        }
        double padY = (yMax - yMin) * 0.06;
        yMin -= padY;
        yMax += padY;
        double padX = (xMax - xMin) * 0.04;
        xMin -= padX;
        xMax += padX;

        int left = 80, right = 190, top = 40, bottom = 60;
        int pw = w - left - right, ph = h - top - bottom;
        Font font = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
        g.setFont(font);
        FontMetrics fm = g.getFontMetrics();

        g.setColor(Color.BLACK);
        g.setFont(font.deriveFont(Font.BOLD, 14f));
        g.drawString(title, left, top - 15);
        g.setFont(font);

        // grid and ticks at round values
        g.setStroke(new BasicStroke(1f));
        for (double xv : linearTicks(xMin, xMax)) {
            int px = left + (int) Math.round(pw * (xv - xMin) / (xMax - xMin));
            g.setColor(new Color(0xe6e6e6));
            g.drawLine(px, top, px, top + ph);
            g.setColor(Color.DARK_GRAY);
            String label = format(xv);
            g.drawString(label, px - fm.stringWidth(label) / 2, top + ph + 16);
        }
        for (double yv : logY ? logTicks(yMin, yMax) : linearTicks(yMin, yMax)) {
            int py = top + ph - (int) Math.round(ph * (yv - yMin) / (yMax - yMin));
            g.setColor(new Color(0xe6e6e6));
            g.drawLine(left, py, left + pw, py);
            g.setColor(Color.DARK_GRAY);
            String yl = logY ? format(Math.pow(10, yv)) : format(yv);
            g.drawString(yl, left - 6 - fm.stringWidth(yl), py + 4);
        }
        g.setColor(Color.BLACK);
        g.drawRect(left, top, pw, ph);
        g.drawString(xLabel, left + pw / 2 - fm.stringWidth(xLabel) / 2, top + ph + 38);
        Graphics2D gy = (Graphics2D) g.create();
        gy.rotate(-Math.PI / 2);
        String yl = yLabel + (logY ? " (log scale)" : "");
        gy.drawString(yl, -(top + ph / 2) - fm.stringWidth(yl) / 2, 18);
        gy.dispose();

        // series
        for (int si = 0; si < series.size(); si++) {
            Series s = series.get(si);
            Color c = PALETTE[si % PALETTE.length];
            g.setColor(c);
            g.setStroke(new BasicStroke(2f));
            Integer[] order = new Integer[s.x().length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Double.compare(s.x()[a], s.x()[b]));
            int lastX = -1, lastY = -1;
            for (int idx : order) {
                if (!usable(s.y()[idx])) {
                    continue;
                }
                int px = left + (int) Math.round(pw * (s.x()[idx] - xMin) / (xMax - xMin));
                int py = top + ph - (int) Math.round(ph * (ty(s.y()[idx]) - yMin) / (yMax - yMin));
                if (lastX >= 0) {
                    g.drawLine(lastX, lastY, px, py);
                }
                g.fillOval(px - 4, py - 4, 8, 8);
                lastX = px;
                lastY = py;
            }
            int ly = top + 10 + si * 18;
            g.fillRect(left + pw + 15, ly - 5, 14, 4);
            g.setColor(Color.BLACK);
            g.drawString(s.name(), left + pw + 35, ly);
        }
    }

    /** Multiples of 1, 2 or 5 x 10^k inside [lo, hi], about five of them. */
    static List<Double> linearTicks(double lo, double hi) {
        double raw = (hi - lo) / 5;
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
        List<Double> ticks = new ArrayList<>();
        for (long k = (long) Math.ceil(lo / step); k * step <= hi + 1e-9 * step; k++) {
            ticks.add(k * step);
        }
        return ticks;
    }

    /** log10 of 1, 2, 5 x 10^k inside [lo, hi] (log10 units); decades only when the range is wide. */
    static List<Double> logTicks(double lo, double hi) {
        List<Double> ticks = new ArrayList<>();
        double[] mantissas = hi - lo > 4 ? new double[]{1} : new double[]{1, 2, 5};
        for (int k = (int) Math.floor(lo) - 1; k <= (int) Math.ceil(hi); k++) {
            for (double m : mantissas) {
                double v = k + Math.log10(m);
                if (v >= lo && v <= hi) {
                    ticks.add(v);
                }
            }
        }
        return ticks;
    }

    private boolean usable(double y) {
        return Double.isFinite(y) && (!logY || y > 0);
    }

    private static String format(double v) {
        double a = Math.abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) {
            return String.format(Locale.ROOT, "%.1e", v);
        }
        if (a == Math.rint(a)) {
            return String.format(Locale.ROOT, "%.0f", v);
        }
        return String.format(Locale.ROOT, a < 1 ? "%.3g" : "%.1f", v);
    }
}
