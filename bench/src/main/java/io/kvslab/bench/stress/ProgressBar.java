package io.kvslab.bench.stress;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * A one-line progress bar on stderr ({@code \r}-updated at most every 250 ms), or nothing when disabled. Shows
 * done/total, the rate, an ETA and a caller-supplied status (e.g. live bytes).
 */
public final class ProgressBar {
    private static final long MIN_INTERVAL_NS = 250_000_000L;
    private final PrintStream out;
    private final String unit;
    private final long total;
    private final long start = System.nanoTime();
    private long lastPrint;
    private boolean printed;

    /** @param out where to draw, or null for no output */
    public ProgressBar(PrintStream out, String unit, long total) {
        this.out = out;
        this.unit = unit;
        this.total = total;
    }

    /** Redraws if enough time has passed since the last draw; {@code status} is only evaluated then. */
    public void update(long done, Supplier<String> status) {
        if (out == null) {
            return;
        }
        long now = System.nanoTime();
        if (printed && now - lastPrint < MIN_INTERVAL_NS && done < total) {
            return;
        }
        lastPrint = now;
        printed = true;
        double secs = (now - start) / 1e9;
        double rate = secs > 0 ? done / secs : 0;
        int width = 30;
        int filled = total <= 0 ? width : (int) Math.min(width, width * done / total);
        String eta = rate > 0 && total > done ? String.format(Locale.ROOT, " eta %ds", (long) ((total - done) / rate))
                : "";
        out.print(String.format(Locale.ROOT, "\r[%s%s] %,d/%,d %s  %,.0f %s/s  %s%s   ", "=".repeat(filled),
                " ".repeat(width - filled), done, total, unit, rate, unit, status.get(), eta));
        out.flush();
    }

    /** Ends the line. */
    public void finish() {
        if (out != null && printed) {
            out.println();
        }
    }
}
