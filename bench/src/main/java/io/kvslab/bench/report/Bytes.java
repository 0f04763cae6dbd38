package io.kvslab.bench.report;

import java.util.Locale;

/** Human-readable byte counts (binary units). */
public final class Bytes {
    private Bytes() {}

    public static String human(long bytes) {
        double b = bytes;
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        while (Math.abs(b) >= 1024 && u < units.length - 1) {
            b /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.2f %s", b, units[u]);
    }
}
