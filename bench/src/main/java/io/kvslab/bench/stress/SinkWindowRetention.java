package io.kvslab.bench.stress;

import io.kvslab.Sequence;

/**
 * A minimal StreamingLLM-style retention (attention sinks + most recent rows), applied with
 * {@link Sequence#retain}. <b>Stand-in</b>: the stress test and the footprint benchmark use it until the policy
 * package's StreamingLLM/SnapKV are available on main; it keeps absolute positions (no key re-rotation), like
 * kvpress's StreamingLLMPress.
 *
 * @param sinks  leading rows always kept
 * @param budget rows kept per (layer, KV head) in total, sinks included; {@code budget >= sinks}
 */
public record SinkWindowRetention(int sinks, int budget) {
    public SinkWindowRetention {
        if (sinks < 0 || budget < 1 || budget < sinks) {
            throw new IllegalArgumentException("need 0 <= sinks <= budget and budget >= 1, got sinks " + sinks
                    + ", budget " + budget);
        }
    }

    /** Rows kept out of {@code length}. */
    public int keptRows(int length) {
        return Math.min(length, budget);
    }

    /** Row indices kept out of {@code length}: {@code [0, sinks)} and the last {@code budget - sinks}, ascending. */
    public int[] rowsToKeep(int length) {
        int kept = keptRows(length);
        int[] rows = new int[kept];
        int head = Math.min(sinks, kept);
        for (int i = 0; i < head; i++) {
            rows[i] = i;
        }
        int tail = kept - head;
        for (int i = 0; i < tail; i++) {
            rows[head + i] = length - tail + i;
        }
        return rows;
    }

    /** Applies the retention to every (layer, KV head) of a sequence; heads within budget are left alone. */
    public void apply(Sequence s) {
        for (int l = 0; l < s.layout().layers(); l++) {
            for (int h = 0; h < s.layout().kvHeads(); h++) {
                int n = s.length(l, h);
                if (n > budget) {
                    s.keep(l, h, rowsToKeep(n));
                }
            }
        }
    }
}
