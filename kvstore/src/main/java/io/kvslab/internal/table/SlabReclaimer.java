package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Unmaps slabs a store has given up on one background daemon thread shared by every store, so that
 * {@code compact()} and the release of a sequence do not pay for the kernel freeing 16 MiB of touched pages per
 * slab (milliseconds each; the copy of the blocks is what a compaction should cost). The store's accounting drops a
 * slab when it hands it over; the process's resident memory follows once the unmap ran. A closing store waits for
 * its slabs still in flight ({@link #await}), so nothing stays mapped after close.
 */
final class SlabReclaimer {
    private static final ExecutorService THREAD = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "kvslab-slab-reclaimer");
        t.setDaemon(true);
        return t;
    });

    private SlabReclaimer() {}

    /** Unmaps the slabs in the background; the caller has made sure nothing can reach them any more. */
    static Future<?> unmapLater(List<Slab> slabs) {
        List<Slab> copy = List.copyOf(slabs);
        return THREAD.submit(() -> {
            for (Slab s : copy) {
                s.release();
            }
        });
    }

    /** Waits until the given hand-overs are unmapped (or failed: rethrown as a {@link KvSlabException}). */
    static void await(List<Future<?>> pending) {
        boolean interrupted = false;
        KvSlabException failure = null;
        for (Future<?> f : pending) {
            while (true) {
                try {
                    f.get();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = new KvSlabException("unmapping a released slab failed: " + e.getCause());
                    }
                    break;
                }
            }
        }
        pending.clear();
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (failure != null) {
            throw failure;
        }
    }
}
