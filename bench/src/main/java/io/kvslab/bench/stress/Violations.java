package io.kvslab.bench.stress;

import io.kvslab.KvSlabException;
import io.kvslab.KvStore;

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

    /**
     * Closes {@code store} and checks what every stress run checks at the end: close reports no leak and the store
     * holds no reserved bytes afterwards.
     *
     * @return the reserved bytes after close (0 unless a violation was recorded)
     */
    public long closeAndCheck(KvStore store) {
        try {
            store.close();
        } catch (KvSlabException e) {
            add("store close reported a leak: " + e.getMessage());
        }
        long reserved = store.stats().reservedBytes();
        check(reserved == 0, "reserved bytes after close: " + reserved);
        return reserved;
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
