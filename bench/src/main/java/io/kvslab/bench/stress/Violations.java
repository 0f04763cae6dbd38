package io.kvslab.bench.stress;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** Thread-safe record of violated invariants: a count and the first few messages. */
public final class Violations {
    private static final int KEEP = 20;
    private final AtomicLong count = new AtomicLong();
    private final List<String> first = new ArrayList<>();

    public void add(String message) {
        count.incrementAndGet();
        synchronized (first) {
            if (first.size() < KEEP) {
                first.add(message);
            }
        }
    }

    /** Records a violation unless {@code ok}. */
    public void check(boolean ok, String message) {
        if (!ok) {
            add(message);
        }
    }

    public long count() {
        return count.get();
    }

    public List<String> messages() {
        synchronized (first) {
            return List.copyOf(first);
        }
    }
}
