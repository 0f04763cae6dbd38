package io.kvslab.bench.stress;

import io.kvslab.bench.geometry.SlabMath;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.ReferenceAttention;

import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.ProcessMemory;
import io.kvslab.bench.report.Json;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.LongAdder;

/**
 * Many sequences on all cores: each worker thread owns a few sequences and, for a set duration, randomly creates
 * (with a prefill), appends, forks, evicts (ragged, per head), compresses (with every policy of
 * {@code io.kvslab.policy} in turn), verifies, attends, compacts and closes them, keeping
 * an independent model of every row (its position and which sequence wrote it) to check the store against.
 *
 * <p>Invariants, each failure counted as a violation:
 * <ul>
 *   <li><b>positions and contents</b>: a verified sequence's lengths and positions equal the model, its
 *       referenced bytes equal the blocks its lengths imply, and a sampled head's K/V rows equal the regenerated
 *       synthetic rows bit for bit (this catches copy-on-write, eviction and compaction bugs);</li>
 *   <li><b>failure atomicity</b>: an operation refused by the memory limit leaves the sequence exactly as before;</li>
 *   <li><b>attention</b> (when a native backend is given): sampled decode attention equals
 *       {@link ReferenceAttention} within tolerance;</li>
 *   <li><b>accounting</b>, at periodic checkpoints where all workers pause: the distinct block addresses of all open
 *       sequences number exactly the store's live blocks, live bytes = live blocks x block bytes,
 *       live &lt;= reserved &lt;= limit, and the store's open-sequence count equals the model's;</li>
 *   <li><b>leaks</b>: after closing every sequence, live bytes are zero and closing the store reports no leak and
 *       leaves zero reserved bytes.</li>
 * </ul>
 * Unexpected exceptions count as violations too.
 */
public final class ChurnStress {
    /** Operation kinds, for the counters. */
    public enum Op { CREATE, APPEND, FORK, EVICT, COMPRESS, VERIFY, ATTEND, COMPACT, CLOSE }

    /**
     * @param layout            store geometry
     * @param threads           worker threads
     * @param durationSeconds   how long the workers run
     * @param limitBytes        store limit ({@code <= 0}: derived so that it is sometimes hit)
     * @param slabBytes         slab size (small slabs exercise compaction)
     * @param sequencesPerThread most sequences one worker holds
     * @param maxRowsPerHead    a sequence evicts instead of appending beyond this
     * @param checkpointSeconds interval of the global accounting checkpoints
     * @param seed              random seed
     */
    public record Config(KvLayout layout, int threads, double durationSeconds, long limitBytes, long slabBytes,
                         int sequencesPerThread, int maxRowsPerHead, double checkpointSeconds, long seed) {
        public Config {
            if (threads < 1 || !(durationSeconds >= 0) || slabBytes < 1 || sequencesPerThread < 1
                    || maxRowsPerHead < 1 || !(checkpointSeconds > 0)) {
                throw new IllegalArgumentException("churn needs threads, sequencesPerThread, maxRowsPerHead, "
                        + "slabBytes >= 1, durationSeconds >= 0 and checkpointSeconds > 0");
            }
        }

        /** Bytes of one sequence at {@code maxRowsPerHead} rows in every head. */
        public long maxSequenceBytes() {
            long blocks = (maxRowsPerHead + layout.tokensPerBlock() - 1) / layout.tokensPerBlock();
            return SlabMath.bytesOfBlocks(layout, 2L * layout.layers() * layout.kvHeads() * blocks);
        }

        /**
         * The configured limit, or a quarter of what every worker's sequences could reach at once (at least four
         * slabs), so that the limit is sometimes hit and failure atomicity gets exercised.
         */
        public long effectiveLimit() {
            if (limitBytes > 0) {
                return limitBytes;
            }
            long quarter = (long) threads * sequencesPerThread * maxSequenceBytes() / 4;
            return Math.max(4 * slabBytes, quarter);
        }
    }

    /** What a run did and found. */
    public record Result(Config config, String attention, double seconds, Map<Op, Long> ops, long limitHits,
                         long checkpoints, long attentionChecks, double maxAttentionError, long peakReservedBytes,
                         long peakLiveBytes, long limitBytes, long finalReservedBytes, long violationCount,
                         List<String> violations, ProcessMemory process) {
        public boolean ok() {
            return violationCount == 0;
        }

        public long totalOps() {
            return ops.values().stream().mapToLong(Long::longValue).sum();
        }

        public Json json() {
            Json opsJson = Json.object();
            ops.forEach((k, v) -> opsJson.put(k.name().toLowerCase(Locale.ROOT), v));
            KvLayout l = config.layout();
            return Json.object()
                    .put("test", "churn")
                    .put("threads", config.threads())
                    .put("seconds", seconds)
                    .put("layers", l.layers())
                    .put("queryHeads", l.queryHeads())
                    .put("kvHeads", l.kvHeads())
                    .put("headDim", l.headDim())
                    .put("dtype", new KvDtypes(l.keyDtype(), l.valueDtype()).label())
                    .put("tokensPerBlock", l.tokensPerBlock())
                    .put("slabBytes", config.slabBytes())
                    .put("limitBytes", limitBytes)
                    .put("attentionBackend", attention)
                    .put("ops", opsJson)
                    .put("totalOps", totalOps())
                    .put("opsPerSecond", totalOps() / seconds)
                    .put("limitHits", limitHits)
                    .put("checkpoints", checkpoints)
                    .put("attentionChecks", attentionChecks)
                    .put("maxAttentionError", maxAttentionError)
                    .put("peakLiveBytes", peakLiveBytes)
                    .put("peakReservedBytes", peakReservedBytes)
                    .put("finalReservedBytes", finalReservedBytes)
                    .put("processRssBytes", process.rssBytes())
                    .put("processHwmBytes", process.hwmBytes())
                    .put("violations", violationCount)
                    .put("violationMessages", violations)
                    .put("ok", ok());
        }

        public String summary() {
            KvLayout l = config.layout();
            StringBuilder o = new StringBuilder();
            ops.forEach((k, v) -> o.append(k.name().toLowerCase(Locale.ROOT)).append(' ').append(v).append(", "));
            return String.format(Locale.ROOT, """
                    churn stress: %d threads for %.1f s; %d layers x %d KV heads x %d dims %s, %d tokens/block
                      %,d ops (%,.0f ops/s): %s
                      limit %s hit %,d times; %d accounting checkpoints; attention checks %,d (%s, max |err| %.3g)
                      peak live %s, peak reserved %s, reserved after close %s; process after the run: %s
                      violations: %d%s
                    """, config.threads(), seconds, l.layers(), l.kvHeads(), l.headDim(),
                    new KvDtypes(l.keyDtype(), l.valueDtype()),
                    l.tokensPerBlock(), totalOps(), totalOps() / seconds,
                    o.length() > 2 ? o.substring(0, o.length() - 2) : "", Bytes.human(limitBytes), limitHits,
                    checkpoints, attentionChecks, attention, maxAttentionError, Bytes.human(peakLiveBytes),
                    Bytes.human(peakReservedBytes), Bytes.human(finalReservedBytes), process.describe(), violationCount,
                    violations.isEmpty() ? "" : "\n    " + String.join("\n    ", violations));
        }
    }

    final Config config;
    final SequenceAttention attention;
    final boolean checkAttention;
    final KvLayout layout;
    final StructuredKv gen;
    final Violations violations = new Violations();
    private volatile float[] outputProjection;
    final Map<Op, LongAdder> counts = new EnumMap<>(Op.class);
    final LongAdder limitHits = new LongAdder();
    final LongAdder attentionChecks = new LongAdder();
    private volatile double maxAttentionError;
    volatile boolean pause;
    volatile boolean stop;

    /**
     * @param attention decode attention to check against the reference on samples; null (or the reference itself)
     *                  skips attention checks
     */
    public ChurnStress(Config config, SequenceAttention attention) {
        this.config = config;
        this.attention = attention;
        this.checkAttention = attention != null && !attention.name().equals(ReferenceAttention.NAME);
        this.layout = config.layout();
        this.gen = new StructuredKv(layout, config.seed(), StructuredKv.Shape.realistic());
        for (Op op : Op.values()) {
            counts.put(op, new LongAdder());
        }
    }

    public Result run() throws InterruptedException {
        long limit = config.effectiveLimit();
        KvStore store = KvStore.open(layout, new StoreConfig(limit, config.slabBytes()));
        CyclicBarrier barrier = new CyclicBarrier(config.threads() + 1);
        List<ChurnWorker> workers = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < config.threads(); t++) {
            ChurnWorker w = new ChurnWorker(this, t, store, barrier);
            workers.add(w);
            Thread th = Thread.ofPlatform().name("churn-" + t).start(w);
            threads.add(th);
        }
        long start = System.nanoTime();
        long deadline = start + (long) (config.durationSeconds() * 1e9);
        long checkpoints = 0;
        long peakLive = 0;
        ProcessMemory process = new ProcessMemory(-1, -1);
        try {
            while (true) {
                long now = System.nanoTime();
                if (now >= deadline) {
                    break;
                }
                long sleep = Math.min(deadline - now, (long) (config.checkpointSeconds() * 1e9));
                TimeUnit.NANOSECONDS.sleep(sleep);
                if (System.nanoTime() >= deadline) {
                    break;
                }
                pause = true;
                if (!await(barrier)) {
                    break;
                }
                peakLive = Math.max(peakLive, globalCheck(store, workers, "checkpoint " + (checkpoints + 1)));
                checkpoints++;
                pause = false;
                if (!await(barrier)) {
                    break;
                }
            }
        } finally {
            pause = false;
            stop = true;
            for (Thread th : threads) {
                th.join();
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long finalReserved;
        long peakReserved;
        try {
            peakLive = Math.max(peakLive, globalCheck(store, workers, "end of run"));
            for (ChurnWorker w : workers) {
                w.closeAll();
            }
            StoreStats st = store.stats();
            process = ProcessMemory.now();
            peakReserved = st.peakReservedBytes();
            peakLive = Math.max(peakLive, st.peakLiveBytes());
            violations.check(st.liveBytes() == 0 && st.liveBlocks() == 0, "after closing every sequence "
                    + st.liveBlocks() + " blocks (" + st.liveBytes() + " bytes) are still live: leaked");
            violations.check(st.openSequences() == 0, st.openSequences() + " sequences still open after closing all");
        } finally {
            finalReserved = violations.closeAndCheck(store);
        }
        Map<Op, Long> ops = new EnumMap<>(Op.class);
        counts.forEach((k, v) -> ops.put(k, v.sum()));
        return new Result(config, attention == null ? "none" : attention.name(), seconds, ops, limitHits.sum(),
                checkpoints, attentionChecks.sum(), maxAttentionError, peakReserved, peakLive, limit, finalReserved,
                violations.count(), violations.messages(), process);
    }

    private boolean await(CyclicBarrier barrier) throws InterruptedException {
        try {
            barrier.await(120, TimeUnit.SECONDS);
            return true;
        } catch (BrokenBarrierException | TimeoutException e) {
            violations.add("a worker did not reach the checkpoint within 120 s (hung or died): " + e);
            return false;
        }
    }

    /** Accounting with every worker paused; returns the live bytes seen. */
    private long globalCheck(KvStore store, List<ChurnWorker> workers, String when) {
        StoreStats st = store.stats();
        Set<Long> addresses = new HashSet<>();
        int open = 0;
        long referenced = 0;
        for (ChurnWorker w : workers) {
            for (ChurnSequence t : w.sequences) {
                open++;
                referenced += t.seq.referencedBytes();
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        for (long id : io.kvslab.internal.table.RawBlocks.blockIds(t.seq, l, h, true)) {
                            addresses.add(id);
                        }
                        for (long id : io.kvslab.internal.table.RawBlocks.blockIds(t.seq, l, h, false)) {
                            addresses.add(id);
                        }
                    }
                }
            }
        }
        violations.check(addresses.size() == st.liveBlocks(), when + ": open sequences reference "
                + addresses.size() + " distinct blocks but the store counts " + st.liveBlocks() + " live blocks");
        violations.check(st.liveBytes() == SlabMath.bytesOfBlocks(layout, st.liveBlocks()), when + ": live bytes "
                + st.liveBytes() + " != live blocks x block bytes");
        violations.check(st.liveBytes() <= st.reservedBytes() && st.reservedBytes() <= st.limitBytes(),
                when + ": need live <= reserved <= limit, got " + st.liveBytes() + ", " + st.reservedBytes() + ", "
                        + st.limitBytes());
        violations.check(referenced >= st.liveBytes(), when + ": sequences reference " + referenced
                + " bytes, fewer than the " + st.liveBytes() + " live bytes");
        violations.check(st.openSequences() == open, when + ": the store counts " + st.openSequences()
                + " open sequences, the workers hold " + open);
        return st.liveBytes();
    }



    synchronized void recordAttentionError(double err) {
        maxAttentionError = Math.max(maxAttentionError, err);
    }

    float[] sharedOutputProjection(SyntheticPolicyInputs inputs) {
        float[] wo = outputProjection;
        if (wo == null) {
            synchronized (this) {
                if (outputProjection == null) {
                    outputProjection = inputs.outputProjection();
                }
                wo = outputProjection;
            }
        }
        return wo;
    }

    static String brief(long[] p, int n) {
        if (n <= 6) {
            return Arrays.toString(Arrays.copyOf(p, n));
        }
        return "[" + p[0] + ", " + p[1] + ", ..., " + p[n - 1] + "] (" + n + " rows)";
    }

    /** StreamingLLM's row choice: rows {@code [0, sinks)} and the newest {@code kept - sinks}, ascending. */
    static int[] sinksAndRecent(int length, int sinks, int kept) {
        int n = Math.min(length, kept);
        int head = Math.min(sinks, n);
        int[] rows = new int[n];
        for (int i = 0; i < head; i++) {
            rows[i] = i;
        }
        for (int i = head; i < n; i++) {
            rows[i] = length - (n - i);
        }
        return rows;
    }
}
