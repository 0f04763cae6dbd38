package io.kvslab.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's own memory as the OS sees it ({@code /proc/self/status} on Linux): resident set now ({@code VmRSS})
 * and its high-water mark ({@code VmHWM}). Reported beside a store's own accounting so heap copies, OpenBLAS
 * buffers, JVM metadata and slab pages show up; the high-water mark is process-wide and never goes down, so it
 * covers everything the JVM did before too. Values are -1 where the file is missing (not Linux).
 *
 * @param rssBytes resident bytes now
 * @param hwmBytes peak resident bytes of the process so far
 */
public record ProcessMemory(long rssBytes, long hwmBytes) {
    private static final Path STATUS = Path.of("/proc/self/status");

    /** Reads the current values (-1 each when unavailable). */
    public static ProcessMemory now() {
        long rss = -1;
        long hwm = -1;
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith("VmRSS:")) {
                    rss = kib(line);
                } else if (line.startsWith("VmHWM:")) {
                    hwm = kib(line);
                }
            }
        } catch (IOException | RuntimeException e) {
            return new ProcessMemory(-1, -1);
        }
        return new ProcessMemory(rss, hwm);
    }

    /** "VmRSS:	  123456 kB" -> bytes. */
    static long kib(String line) {
        String digits = line.substring(line.indexOf(':') + 1).replace("kB", "").trim();
        return Long.parseLong(digits) * 1024;
    }

    /** "RSS 1.2 GiB (peak 2.0 GiB)", or "n/a". */
    public String describe() {
        return rssBytes < 0 ? "n/a" : "RSS " + Bytes.human(rssBytes) + " (VmHWM " + Bytes.human(hwmBytes) + ")";
    }

    public Json json() {
        return Json.object().put("vmRssBytes", rssBytes).put("vmHwmBytes", hwmBytes);
    }
}
