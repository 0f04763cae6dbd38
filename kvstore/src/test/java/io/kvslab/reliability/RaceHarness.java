package io.kvslab.reliability;

import io.kvslab.Attention;
import io.kvslab.ClosedException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The no-silent-corruption race oracle, run in a forked JVM (so a fault fails one test, not the run) with
 * {@code -Dkvslab.debug.poisonFreed=true}: freed blocks are filled with NaN bytes and reused at once instead of
 * unmapped, so a kernel racing a free would read poison or another sequence's rows rather than fault.
 *
 * <p>Sequence A holds 400 seeded random rows per KV head. The legal decode outputs are known before the race:
 * {@code full} (A as filled) and {@code kept} (A after {@code keep} of rows 0..199 of every head). Query heads of
 * one KV head depend on that head's table only, so each KV group's slice of a racing decode must equal the
 * {@code full} or the {@code kept} slice bit for bit, or the decode must throw a typed {@link KvSlabException}
 * ({@link ClosedException} after a close). NaN anywhere (poison) or any other value (another sequence's rows,
 * stale data) is a violation. Exit status 0 = no violation; 1 = violations (printed).
 *
 * <p>Modes: {@code close} (decode vs close of A), {@code keep} (decode vs keep on A), {@code handler} (decode vs a
 * memory-pressure handler on another thread evicting A with {@code MemoryPressure.tryKeep}), {@code mixed}
 * (4 threads: decoder; mutator doing keep / close-and-refill / fork-keep-close / compact on A; two churners
 * appending to and closing other sequences whose rows differ from A's; a memory limit tight enough that refills
 * and churn call a pressure handler, which evicts A's rows with {@code MemoryPressure.tryKeep}).
 */
public final class RaceHarness {
    static final KvLayout LAYOUT = new KvLayout(1, 8, 4, 64, DType.F32, 16);
    static final int ROWS = 400;
    static final int KEPT = 200;
    static final int[] KEEP_ROWS = java.util.stream.IntStream.range(0, KEPT).toArray();
    static final int WIDTH = LAYOUT.queryHeads() * LAYOUT.headDim();
    static final int GROUP_FLOATS = LAYOUT.groupSize() * LAYOUT.headDim();

    final float[][] rows = new float[ROWS][];
    final float[] q = new float[WIDTH];
    float[] full;
    float[] kept;
    final AtomicLong decodes = new AtomicLong();
    final AtomicLong fullSeen = new AtomicLong();
    final AtomicLong keptSeen = new AtomicLong();
    final AtomicLong mixedSeen = new AtomicLong();
    final AtomicLong typed = new AtomicLong();
    final AtomicLong handlerEvictions = new AtomicLong();
    final AtomicLong violations = new AtomicLong();
    final AtomicReference<String> firstViolation = new AtomicReference<>();

    RaceHarness(long seed) {
        Random rnd = new Random(seed);
        for (int t = 0; t < ROWS; t++) {
            rows[t] = new float[LAYOUT.kvHeads() * LAYOUT.headDim()];
            for (int i = 0; i < rows[t].length; i++) {
                rows[t][i] = rnd.nextFloat() * 2 - 1;
            }
        }
        for (int i = 0; i < q.length; i++) {
            q[i] = rnd.nextFloat() * 2 - 1;
        }
    }

    Sequence filledA(KvStore store) {
        Sequence s = store.newSequence();
        try {
            for (int t = 0; t < ROWS; t++) {
                s.append(0, rows[t], rows[t], t);
            }
            return s;
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
    }

    void references() {
        try (KvStore store = KvStore.open(LAYOUT); Sequence r = filledA(store); Attention att = Attention.create(1)) {
            full = new float[WIDTH];
            att.decode(r, 0, q, full);
            for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                r.keep(0, h, KEEP_ROWS);
            }
            kept = new float[WIDTH];
            att.decode(r, 0, q, kept);
        }
        if (Arrays.equals(full, kept)) {
            throw new IllegalStateException("the two legal outputs must differ for the oracle to mean anything");
        }
    }

    /** Checks one racing decode's output slice by slice. */
    void check(float[] out, String where) {
        decodes.incrementAndGet();
        boolean allFull = true;
        boolean allKept = true;
        for (int g = 0; g < LAYOUT.kvHeads(); g++) {
            int from = g * GROUP_FLOATS;
            int to = from + GROUP_FLOATS;
            boolean f = Arrays.equals(out, from, to, full, from, to);
            boolean k = Arrays.equals(out, from, to, kept, from, to);
            allFull &= f;
            allKept &= k;
            if (!f && !k) {
                boolean nan = false;
                for (int i = from; i < to; i++) {
                    nan |= Float.isNaN(out[i]);
                }
                violation(where + ": KV group " + g + (nan ? " read NaN (poisoned freed memory)"
                        : " equals neither legal output (stale or foreign rows), e.g. out[" + from + "] = "
                        + out[from] + " vs " + full[from] + " / " + kept[from]));
                return;
            }
        }
        (allFull ? fullSeen : allKept ? keptSeen : mixedSeen).incrementAndGet();
    }

    void violation(String what) {
        violations.incrementAndGet();
        firstViolation.compareAndSet(null, what);
    }

    /** Decodes {@code a} until it is closed or {@code stop} is set; typed exceptions are legal. */
    Thread decoder(AtomicReference<Sequence> a, AtomicBoolean stop, boolean stopOnClose) {
        return decoder(a, stop, stopOnClose, 0);
    }

    /** As above, pausing {@code pauseNanos} between decodes (so try-locking handlers sometimes find A idle). */
    Thread decoder(AtomicReference<Sequence> a, AtomicBoolean stop, boolean stopOnClose, long pauseNanos) {
        Thread t = new Thread(() -> {
            float[] out = new float[WIDTH];
            try (Attention att = Attention.create(1)) {
                while (!stop.get()) {
                    Sequence s = a.get();
                    Arrays.fill(out, 12345f);
                    try {
                        att.decode(s, 0, q, out);
                        check(out, "decode");
                    } catch (ClosedException e) {
                        typed.incrementAndGet();
                        if (stopOnClose) {
                            return;
                        }
                    } catch (KvSlabException e) {
                        typed.incrementAndGet();
                    }
                    if (pauseNanos > 0) {
                        java.util.concurrent.locks.LockSupport.parkNanos(pauseNanos);
                    }
                }
            } catch (Throwable e) {
                violation("decoder died: " + e);
            }
        }, "decoder");
        t.start();
        return t;
    }

    void runClose(long deadline) throws InterruptedException {
        while (System.nanoTime() < deadline) {
            try (KvStore store = KvStore.open(LAYOUT)) {
                AtomicReference<Sequence> a = new AtomicReference<>(filledA(store));
                Thread d = decoder(a, new AtomicBoolean(), true);
                Thread.sleep(ThreadLocalRandom.current().nextInt(3));
                a.get().close();
                d.join();
            }
        }
    }

    void runKeep(long deadline) throws InterruptedException {
        while (System.nanoTime() < deadline) {
            try (KvStore store = KvStore.open(LAYOUT)) {
                AtomicReference<Sequence> a = new AtomicReference<>(filledA(store));
                AtomicBoolean stop = new AtomicBoolean();
                Thread d = decoder(a, stop, true);
                Thread.sleep(ThreadLocalRandom.current().nextInt(3));
                for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                    a.get().keep(0, h, KEEP_ROWS);
                }
                Thread.sleep(1);
                stop.set(true);
                d.join();
                a.get().close();
            }
        }
    }

    void runHandler(long deadline) throws InterruptedException {
        long blockBytes = LAYOUT.blockBytes();
        long aBlocks = 2L * LAYOUT.kvHeads() * (ROWS / LAYOUT.tokensPerBlock());
        while (System.nanoTime() < deadline) {
            // room for A and a few more blocks: T's appends soon need the handler to evict half of A
            try (KvStore store = KvStore.open(LAYOUT, new StoreConfig((aBlocks + 16) * blockBytes, 64 * blockBytes))) {
                AtomicReference<Sequence> a = new AtomicReference<>(filledA(store));
                store.addPressureHandler(p -> {
                    boolean freed = false;
                    for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                        freed |= p.tryKeep(a.get(), 0, h, KEEP_ROWS);
                    }
                    return freed;
                });
                AtomicBoolean stop = new AtomicBoolean();
                Thread d = decoder(a, stop, true);
                Sequence t = store.newSequence();
                float[] other = new float[LAYOUT.kvHeads() * LAYOUT.headDim()];
                Arrays.fill(other, 7f);
                try {
                    for (int i = 0; i < ROWS; i++) {
                        t.append(0, other, other, i);
                    }
                } catch (io.kvslab.MemoryLimitExceededException e) {
                    typed.incrementAndGet();   // A was busy whenever the handler tried: legal
                }
                stop.set(true);
                d.join();
                t.close();
                a.get().close();
            }
        }
    }

    void runMixed(long deadline) throws InterruptedException {
        long blockBytes = LAYOUT.blockBytes();
        // A and a refill of it (2 x 200 blocks) plus churn (2 x 32) do not fit: handlers run often
        try (KvStore store = KvStore.open(LAYOUT, new StoreConfig(420 * blockBytes, 64 * blockBytes))) {
            AtomicReference<Sequence> a = new AtomicReference<>(filledA(store));
            AtomicLong evictions = handlerEvictions;
            store.addPressureHandler(p -> {
                boolean freed = false;
                Sequence victim = a.get();
                for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                    if (!victim.isClosed() && victim.length(0, h) > KEPT && p.tryKeep(victim, 0, h, KEEP_ROWS)) {
                        freed = true;
                        evictions.incrementAndGet();
                    }
                }
                return freed;
            });
            AtomicBoolean stop = new AtomicBoolean();
            Thread d = decoder(a, stop, false, 50_000);
            Thread mutator = new Thread(() -> {
                ThreadLocalRandom rnd = ThreadLocalRandom.current();
                try {
                    while (!stop.get()) {
                        Sequence s = a.get();
                        try {
                        switch (rnd.nextInt(4)) {
                            case 0 -> {
                                for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                                    s.keep(0, h, KEEP_ROWS);
                                }
                            }
                            case 1 -> {
                                a.set(filledA(store));   // a refused refill closes itself and throws
                                s.close();
                            }
                            case 2 -> {
                                try (Sequence f = s.fork()) {
                                    for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                                        f.keep(0, h, new int[] {0, 5});
                                    }
                                }
                            }
                            default -> store.compact();
                        }
                        } catch (io.kvslab.MemoryLimitExceededException e) {
                            typed.incrementAndGet();   // the limit refused this step; nothing changed
                        }
                        Thread.sleep(0, rnd.nextInt(200_000));
                    }
                } catch (Throwable e) {
                    violation("mutator died: " + e);
                }
            }, "mutator");
            Runnable churn = () -> {
                float[] other = new float[LAYOUT.kvHeads() * LAYOUT.headDim()];
                Arrays.fill(other, 3f);
                try {
                    while (!stop.get()) {
                        try (Sequence b = store.newSequence()) {
                            for (int i = 0; i < 64; i++) {
                                b.append(0, other, other, i);
                            }
                        } catch (io.kvslab.MemoryLimitExceededException e) {
                            typed.incrementAndGet();
                        }
                    }
                } catch (Throwable e) {
                    violation("churner died: " + e);
                }
            };
            Thread c1 = new Thread(churn, "churn-1");
            Thread c2 = new Thread(churn, "churn-2");
            mutator.start();
            c1.start();
            c2.start();
            while (System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            stop.set(true);
            d.join();
            mutator.join();
            c1.join();
            c2.join();
            a.get().close();
            if (store.stats().liveBlocks() != 0) {
                violation("blocks leaked: " + store.stats().liveBlocks() + " live after every sequence closed");
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        double seconds = Double.parseDouble(args[1]);
        RaceHarness h = new RaceHarness(Long.parseLong(args.length > 2 ? args[2] : "1"));
        System.out.println("poisonFreed=" + Boolean.getBoolean("kvslab.debug.poisonFreed"));
        h.references();
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        switch (mode) {
            case "close" -> h.runClose(deadline);
            case "keep" -> h.runKeep(deadline);
            case "handler" -> h.runHandler(deadline);
            case "mixed" -> h.runMixed(deadline);
            default -> throw new IllegalArgumentException("mode must be close, keep, handler or mixed: " + mode);
        }
        System.out.println("mode=" + mode + " decodes=" + h.decodes + " full=" + h.fullSeen + " kept=" + h.keptSeen
                + " partlyKept=" + h.mixedSeen + " typedExceptions=" + h.typed + " handlerEvictions=" + h.handlerEvictions
                + " violations=" + h.violations);
        if (h.violations.get() > 0) {
            System.out.println("VIOLATION: " + h.firstViolation.get());
            System.exit(1);
        }
        System.exit(0);
    }
}
