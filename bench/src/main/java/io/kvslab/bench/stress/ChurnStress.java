package io.kvslab.bench.stress;

import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.ReferenceAttention;

import io.kvslab.KvSlabException;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Json;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.OutputProjection;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;
import io.kvslab.bench.eval.WholeContext;
import io.kvslab.policy.WindowQueries;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
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
            return 2L * layout.layers() * layout.kvHeads() * blocks * layout.blockBytes();
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
                         List<String> violations) {
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
                    .put("dtype", l.dtype().name())
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
                      peak live %s, peak reserved %s, reserved after close %s
                      violations: %d%s
                    """, config.threads(), seconds, l.layers(), l.kvHeads(), l.headDim(), l.dtype(),
                    l.tokensPerBlock(), totalOps(), totalOps() / seconds,
                    o.length() > 2 ? o.substring(0, o.length() - 2) : "", Bytes.human(limitBytes), limitHits,
                    checkpoints, attentionChecks, attention, maxAttentionError, Bytes.human(peakLiveBytes),
                    Bytes.human(peakReservedBytes), Bytes.human(finalReservedBytes), violationCount,
                    violations.isEmpty() ? "" : "\n    " + String.join("\n    ", violations));
        }
    }

    private final Config config;
    private final SequenceAttention attention;
    private final boolean checkAttention;
    private final KvLayout layout;
    private final StructuredKv gen;
    private final Violations violations = new Violations();
    private volatile OutputProjection outputProjection;
    private final Map<Op, LongAdder> counts = new EnumMap<>(Op.class);
    private final LongAdder limitHits = new LongAdder();
    private final LongAdder attentionChecks = new LongAdder();
    private volatile double maxAttentionError;
    private volatile boolean pause;
    private volatile boolean stop;

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
        List<Worker> workers = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < config.threads(); t++) {
            Worker w = new Worker(t, store, barrier);
            workers.add(w);
            Thread th = Thread.ofPlatform().name("churn-" + t).start(w);
            threads.add(th);
        }
        long start = System.nanoTime();
        long deadline = start + (long) (config.durationSeconds() * 1e9);
        long checkpoints = 0;
        long peakLive = 0;
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
            for (Worker w : workers) {
                w.closeAll();
            }
            StoreStats st = store.stats();
            peakReserved = st.peakReservedBytes();
            peakLive = Math.max(peakLive, st.memory().peakLiveBytes());
            violations.check(st.liveBytes() == 0 && st.liveBlocks() == 0, "after closing every sequence "
                    + st.liveBlocks() + " blocks (" + st.liveBytes() + " bytes) are still live: leaked");
            violations.check(st.openSequences() == 0, st.openSequences() + " sequences still open after closing all");
        } finally {
            try {
                store.close();
            } catch (KvSlabException e) {
                violations.add("store close reported a leak: " + e.getMessage());
            }
            finalReserved = store.stats().reservedBytes();
            violations.check(finalReserved == 0, "reserved bytes after close: " + finalReserved);
        }
        Map<Op, Long> ops = new EnumMap<>(Op.class);
        counts.forEach((k, v) -> ops.put(k, v.sum()));
        return new Result(config, attention == null ? "none" : attention.name(), seconds, ops, limitHits.sum(),
                checkpoints, attentionChecks.sum(), maxAttentionError, peakReserved, peakLive, limit, finalReserved,
                violations.count(), violations.messages());
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
    private long globalCheck(KvStore store, List<Worker> workers, String when) {
        StoreStats st = store.stats();
        Set<Long> addresses = new HashSet<>();
        int open = 0;
        long referenced = 0;
        for (Worker w : workers) {
            for (Tracked t : w.sequences) {
                open++;
                referenced += t.seq.referencedBytes();
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        for (long id : io.kvslab.RawBlocks.blockIds(t.seq, l, h, true)) {
                            addresses.add(id);
                        }
                        for (long id : io.kvslab.RawBlocks.blockIds(t.seq, l, h, false)) {
                            addresses.add(id);
                        }
                    }
                }
            }
        }
        violations.check(addresses.size() == st.liveBlocks(), when + ": open sequences reference "
                + addresses.size() + " distinct blocks but the store counts " + st.liveBlocks() + " live blocks");
        violations.check(st.liveBytes() == st.liveBlocks() * layout.blockBytes(), when + ": live bytes "
                + st.liveBytes() + " != live blocks x block bytes");
        violations.check(st.liveBytes() <= st.reservedBytes() && st.reservedBytes() <= st.memory().limitBytes(),
                when + ": need live <= reserved <= limit, got " + st.liveBytes() + ", " + st.reservedBytes() + ", "
                        + st.memory().limitBytes());
        violations.check(referenced >= st.liveBytes(), when + ": sequences reference " + referenced
                + " bytes, fewer than the " + st.liveBytes() + " live bytes");
        violations.check(st.openSequences() == open, when + ": the store counts " + st.openSequences()
                + " open sequences, the workers hold " + open);
        return st.liveBytes();
    }

    /** The model of one (layer, KV head): position and writer salt of every row. */
    private static final class Rows {
        long[] pos = new long[16];
        long[] salt = new long[16];
        int n;

        Rows copy() {
            Rows r = new Rows();
            r.pos = pos.clone();
            r.salt = salt.clone();
            r.n = n;
            return r;
        }

        void add(long p, long s) {
            if (n == pos.length) {
                pos = Arrays.copyOf(pos, n * 2);
                salt = Arrays.copyOf(salt, n * 2);
            }
            pos[n] = p;
            salt[n] = s;
            n++;
        }

        void keep(int[] rows) {
            for (int j = 0; j < rows.length; j++) {
                pos[j] = pos[rows[j]];
                salt[j] = salt[rows[j]];
            }
            n = rows.length;
        }

        long last() {
            return n == 0 ? -1 : pos[n - 1];
        }
    }

    /** A sequence and its model. */
    private final class Tracked {
        final Sequence seq;
        final long salt;
        final Rows[] heads = new Rows[layout.layers() * layout.kvHeads()];

        Tracked(Sequence seq, long salt) {
            this.seq = seq;
            this.salt = salt;
            for (int i = 0; i < heads.length; i++) {
                heads[i] = new Rows();
            }
        }

        Tracked(Sequence seq, long salt, Tracked parent) {
            this.seq = seq;
            this.salt = salt;
            for (int i = 0; i < heads.length; i++) {
                heads[i] = parent.heads[i].copy();
            }
        }

        Rows rows(int layer, int kvHead) {
            return heads[layer * layout.kvHeads() + kvHead];
        }

        long nextPosition() {
            long last = -1;
            for (Rows r : heads) {
                last = Math.max(last, r.last());
            }
            return last + 1;
        }

        int maxRows() {
            int m = 0;
            for (Rows r : heads) {
                m = Math.max(m, r.n);
            }
            return m;
        }
    }

    private final class Worker implements Runnable {
        final int id;
        final KvStore store;
        final CyclicBarrier barrier;
        final SplittableRandom rnd;
        final List<Tracked> sequences = new ArrayList<>();
        long nextSalt;
        private Compressor compressor;
        private int nextPolicy;

        Worker(int id, KvStore store, CyclicBarrier barrier) {
            this.id = id;
            this.store = store;
            this.barrier = barrier;
            this.rnd = new SplittableRandom(config.seed() * 31 + id);
            this.nextSalt = ((long) id + 1) << 40;
        }

        @Override
        public void run() {
            try {
                loop();
            } finally {
                if (compressor != null) {
                    compressor.close();
                }
            }
        }

        private void loop() {
            while (!stop) {
                if (pause) {
                    try {
                        barrier.await();
                        barrier.await();
                    } catch (InterruptedException | BrokenBarrierException e) {
                        return;
                    }
                    continue;
                }
                step();
            }
        }

        void step() {
            Tracked t = sequences.isEmpty() ? null : sequences.get(rnd.nextInt(sequences.size()));
            int dice = rnd.nextInt(100);
            Op op;
            if (t == null || (dice < 8 && sequences.size() < config.sequencesPerThread())) {
                op = Op.CREATE;
            } else if (dice < 50) {
                op = t.maxRows() + 16 > config.maxRowsPerHead() ? Op.EVICT : Op.APPEND;
            } else if (dice < 58) {
                op = sequences.size() < config.sequencesPerThread() ? Op.FORK : Op.CLOSE;
            } else if (dice < 72) {
                op = Op.EVICT;
            } else if (dice < 75) {
                op = Op.COMPRESS;   // a few ms each (context read, scoring kernels): rarer than a plain eviction
            } else if (dice < 86) {
                op = Op.VERIFY;
            } else if (dice < 91) {
                op = checkAttention ? Op.ATTEND : Op.VERIFY;
            } else if (dice < 93) {
                op = Op.COMPACT;
            } else {
                op = Op.CLOSE;
            }
            try {
                switch (op) {
                    case CREATE -> create();
                    case APPEND -> append(t);
                    case FORK -> fork(t);
                    case EVICT -> evict(t);
                    case COMPRESS -> compress(t);
                    case VERIFY -> verify(t, "verify");
                    case ATTEND -> attend(t);
                    case COMPACT -> store.compact();
                    case CLOSE -> close(t);
                }
                counts.get(op).increment();
            } catch (MemoryLimitExceededException e) {
                limitHits.increment();
                if (t != null && sequences.contains(t)) {
                    verify(t, "after a refused " + op.name().toLowerCase(Locale.ROOT));
                }
                // Make room: drop the largest sequence.
                Tracked big = null;
                for (Tracked s : sequences) {
                    if (big == null || s.maxRows() > big.maxRows()) {
                        big = s;
                    }
                }
                if (big != null) {
                    close(big);
                }
            } catch (RuntimeException | AssertionError e) {
                violations.add("thread " + id + ": " + op.name().toLowerCase(Locale.ROOT) + " threw " + e);
                // The model of that sequence may be out of step now: stop tracking it.
                if (t != null && sequences.remove(t)) {
                    try {
                        t.seq.close();
                    } catch (RuntimeException ignored) {
                        // already reported
                    }
                }
            }
        }

        void create() {
            Sequence s = store.newSequence();
            Tracked t = new Tracked(s, nextSalt++);
            sequences.add(t);
            appendTokens(t, 1 + rnd.nextInt(Math.max(1, config.maxRowsPerHead() / 2)), true);
        }

        void append(Tracked t) {
            appendTokens(t, rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(16) : 1, false);
        }

        /** Appends n tokens (same positions in every layer, a random gap before them). Updates the model per layer. */
        void appendTokens(Tracked t, int n, boolean chunk) {
            long first = t.nextPosition() + (rnd.nextInt(4) == 0 ? rnd.nextInt(3) : 0);
            long[] pos = new long[n];
            for (int i = 0; i < n; i++) {
                pos[i] = first + i;
            }
            int width = layout.kvHeads() * layout.headDim();
            float[] k = new float[n * width];
            float[] v = new float[n * width];
            for (int l = 0; l < layout.layers(); l++) {
                gen.keys(t.salt, l, pos, k);
                gen.values(t.salt, l, pos, v);
                if (n == 1 && !chunk) {
                    t.seq.append(l, k, v, pos[0]);
                } else {
                    t.seq.appendChunk(l, k, v, pos);
                }
                for (int h = 0; h < layout.kvHeads(); h++) {
                    Rows r = t.rows(l, h);
                    for (long p : pos) {
                        r.add(p, t.salt);
                    }
                }
            }
        }

        void fork(Tracked t) {
            Sequence child = t.seq.fork();
            sequences.add(new Tracked(child, nextSalt++, t));
        }

        /** Ragged eviction: one head, or every head of a layer; a random sample or sinks + recent window. */
        void evict(Tracked t) {
            int l = rnd.nextInt(layout.layers());
            boolean wholeLayer = rnd.nextBoolean();
            int h0 = wholeLayer ? 0 : rnd.nextInt(layout.kvHeads());
            int h1 = wholeLayer ? layout.kvHeads() : h0 + 1;
            for (int h = h0; h < h1; h++) {
                Rows r = t.rows(l, h);
                if (r.n == 0) {
                    continue;
                }
                int[] keep;
                if (rnd.nextBoolean()) {
                    int sinks = Math.min(4, r.n);
                    keep = sinksAndRecent(r.n, sinks, Math.max(sinks, r.n / 2 + 1));
                } else {
                    double p = rnd.nextDouble();
                    keep = java.util.stream.IntStream.range(0, r.n).filter(i -> rnd.nextDouble() < p).toArray();
                }
                t.seq.keep(l, h, keep);
                r.keep(keep);
            }
        }

        /**
         * Compresses with the next policy of {@link Policies#NAMES} to half of each head's rows (DBudgetKV: its own
         * budget), applying the selection layer by layer ({@code Sequence.keep(layer, rows)}, all heads of a layer or
         * none) and updating the model after each layer, so that a layer refused by the memory limit (a table shared
         * with a fork needs fresh blocks) leaves the model exact.
         */
        void compress(Tracked t) {
            if (compressor == null) {
                compressor = new Compressor();
            }
            CompressionPolicy policy = Policies.byName(Policies.NAMES.get(nextPolicy++ % Policies.NAMES.size()));
            long end = t.nextPosition();
            if (end == 0) {
                return;
            }
            SyntheticPolicyInputs inputs = new SyntheticPolicyInputs(layout, gen, t.salt, config.seed());
            List<WindowQueries> windows = new ArrayList<>();
            List<OutputProjection> wo = new ArrayList<>();
            for (int l = 0; l < layout.layers(); l++) {
                windows.add(policy.windowQueries() > 0 ? inputs.window(l, end, policy.windowQueries()) : null);
                wo.add(policy.needsOutputProjection() ? sharedOutputProjection(inputs) : null);
            }
            Budget budget = policy.dynamicBudget() ? Budget.dynamic() : Budget.fraction(0.5);
            Selection sel = policy.select(WholeContext.read(t.seq, windows, wo), budget, compressor.workspace());
            for (int l = 0; l < layout.layers(); l++) {
                t.seq.keep(l, sel.kept()[l]); // all heads of the layer or none
                for (int h = 0; h < layout.kvHeads(); h++) {
                    if (!sel.keepsAll(l, h)) {
                        t.rows(l, h).keep(sel.kept(l, h));
                    }
                }
            }
        }

        void verify(Tracked t, String when) {
            long expectBlocks = 0;
            int tpb = layout.tokensPerBlock();
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    Rows r = t.rows(l, h);
                    long[] p = t.seq.positions(l, h);
                    if (p.length != r.n || !Arrays.equals(p, 0, r.n, r.pos, 0, r.n)) {
                        violations.add("thread " + id + " " + when + ": sequence " + t.seq.id() + " layer " + l
                                + " head " + h + " holds positions " + brief(p, p.length) + ", expected "
                                + brief(r.pos, r.n));
                        return;
                    }
                    for (int i = 1; i < p.length; i++) {
                        if (p[i] <= p[i - 1]) {
                            violations.add("thread " + id + " " + when + ": positions not increasing in layer " + l
                                    + " head " + h + " of sequence " + t.seq.id());
                            return;
                        }
                    }
                    expectBlocks += 2L * ((r.n + tpb - 1) / tpb);
                }
            }
            violations.check(t.seq.referencedBytes() == expectBlocks * layout.blockBytes(), "thread " + id + " "
                    + when + ": sequence " + t.seq.id() + " references " + t.seq.referencedBytes()
                    + " bytes, its lengths need " + expectBlocks * layout.blockBytes());
            int l = rnd.nextInt(layout.layers());
            int h = rnd.nextInt(layout.kvHeads());
            Rows r = t.rows(l, h);
            String bad = StoredRows.mismatch(t.seq, l, h, gen, r.pos, r.salt, r.n);
            if (bad != null) {
                violations.add("thread " + id + " " + when + ": sequence " + t.seq.id() + " " + bad);
            }
        }

        void attend(Tracked t) {
            int l = rnd.nextInt(layout.layers());
            float[] q = new float[layout.queryHeads() * layout.headDim()];
            float[] out = new float[q.length];
            float[] ref = new float[q.length];
            gen.query(t.salt, l, t.nextPosition(), q);
            attention.decode(t.seq, l, q, out);
            new ReferenceAttention().decode(t.seq, l, q, ref);
            double err = LongContextStress.maxAbsDiff(out, ref);
            synchronized (ChurnStress.this) {
                maxAttentionError = Math.max(maxAttentionError, err);
            }
            attentionChecks.increment();
            violations.check(err <= LongContextStress.ATTENTION_TOLERANCE, "thread " + id + ": attention of "
                    + "sequence " + t.seq.id() + " layer " + l + " differs from the reference by " + err);
        }

        void close(Tracked t) {
            sequences.remove(t);
            t.seq.close();
        }

        void closeAll() {
            for (Tracked t : List.copyOf(sequences)) {
                close(t);
            }
        }
    }

    private OutputProjection sharedOutputProjection(SyntheticPolicyInputs inputs) {
        OutputProjection wo = outputProjection;
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

    private static String brief(long[] p, int n) {
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
