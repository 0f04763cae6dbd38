package io.kvslab.bench.footprint;

import io.kvslab.bench.stress.SinkWindowRetention;
import io.kvslab.cache.KvLayout;
import io.kvslab.cache.Sequence;

import java.util.Locale;

/**
 * The "policies" dimension of the footprint benchmark: how a filled sequence is compressed, and how many rows per
 * (layer, KV head) that keeps, so that rows too large to allocate can be computed analytically.
 */
public interface FootprintPolicy {
    /** Short name for tables and plots. */
    String name();

    /** Rows kept by one (layer, KV head) out of a context of {@code contextTokens} rows. */
    int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens);

    /** Compresses a filled sequence in place (really freeing rows). */
    void compress(Sequence s);

    /** No compression: the dense cache. */
    static FootprintPolicy full() {
        return new Full();
    }

    /**
     * Sinks + recent window keeping {@code keptFraction} of the context (stand-in for StreamingLLM until the
     * policy package is on main; see {@link SinkWindowRetention}).
     */
    static FootprintPolicy window(double keptFraction, int sinks) {
        return new Window(keptFraction, sinks);
    }

    /** {@code full}, or {@code window} (kept fraction and sinks from the arguments). */
    static FootprintPolicy parse(String name, double keptFraction, int sinks) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "full", "none" -> full();
            case "window", "sinkwindow" -> window(keptFraction, sinks);
            default -> throw new IllegalArgumentException("unknown policy '" + name + "': use full or window");
        };
    }

    /** Keeps everything. */
    record Full() implements FootprintPolicy {
        @Override
        public String name() {
            return "full";
        }

        @Override
        public int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens) {
            return contextTokens;
        }

        @Override
        public void compress(Sequence s) {
            // nothing to evict
        }
    }

    /** Sinks + most recent rows, {@code keptFraction} of the context per head (at least the sinks, at least 1). */
    record Window(double keptFraction, int sinks) implements FootprintPolicy {
        public Window {
            if (!(keptFraction > 0 && keptFraction <= 1) || sinks < 0) {
                throw new IllegalArgumentException("window policy needs a kept fraction in (0, 1] and sinks >= 0, got "
                        + keptFraction + " and " + sinks);
            }
        }

        @Override
        public String name() {
            return String.format(Locale.ROOT, "window%.0f%%", keptFraction * 100);
        }

        @Override
        public int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens) {
            return retention(contextTokens).keptRows(contextTokens);
        }

        @Override
        public void compress(Sequence s) {
            int n = s.length(0, 0);
            retention(n).apply(s);
        }

        private SinkWindowRetention retention(int contextTokens) {
            int budget = (int) Math.max(Math.max(1, sinks), Math.floor(keptFraction * contextTokens));
            return new SinkWindowRetention(sinks, budget);
        }
    }
}
