package io.kvslab.bench.stress;

import io.kvslab.bench.model.KvDtypes;
import io.kvslab.KvArgumentException;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.ReferenceAttention;

import io.kvslab.bench.geometry.SlabMath;

import io.kvslab.KvSlabException;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.report.Progress;
import io.kvslab.bench.report.ProcessMemory;
import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.LayerInputs;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Policies;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Streams a long context through one sequence with decoding-time compression to a fixed budget.
 *
 * <p>Tokens arrive in chunks of {@code chunk} (1 = token-by-token decoding) and go through every layer. When the
 * sequence has taken {@code budget + interval} tokens since the start, and then every {@code interval} tokens, it is
 * compressed to a budget of {@code budget} rows per (layer, KV head) by a policy of {@code io.kvslab.policy}
 * (default StreamingLLM; window policies get the synthetic queries of the last tokens, CriticalKV a synthetic W_o),
 * applied one layer at a time (the library's {@link Compressor}). Every {@code attentionEvery} tokens a decode step
 * runs attention over every layer.
 *
 * <p><b>Memory bound.</b> With a uniform policy (same budget in every head and layer) a head never holds more than
 * {@code maxRows = budget + interval + chunk - 1} rows, so live bytes stay under
 * {@code 2 x layers x kvHeads x ceil(maxRows / tokensPerBlock) x blockBytes}. Head-wise and pyramid policies move
 * budget between heads and layers but keep the total, so the rows of all heads stay under
 * {@code layers x kvHeads x maxRows} and the blocks under that over tokensPerBlock plus one partial block per head.
 * The allocator only takes a new slab when every slab is full, so reserved bytes stay under the block bound
 * rounded up to whole slabs. The store's hard limit is set to exactly that bound: crossing it fails the run.
 * Dynamic-budget policies (DBudgetKV) have no such bound and are refused.
 *
 * <p><b>Invariants checked</b> (each failure is a violation; the command exits non-zero):
 * after every compression, for sinks + recent policies (StreamingLLM, {@code window}) every head's positions are
 * exactly the sinks plus the newest rows; for the others every head keeps a strictly increasing subsequence of its
 * rows, every observation-window row it must protect, exactly the budget when budgets are uniform, and
 * exactly the pooled total budget over a layer's heads (Ada-KV) or a head's layers (PyramidKV); the store's live bytes equal the block count the lengths imply; a sampled
 * head's stored K and V rows equal the regenerated synthetic rows (after dtype rounding) bit for bit; every
 * {@code checkEvery}-th attention step one layer's output is compared against {@link ReferenceAttention}; at the
 * end, closing the sequence frees every block and closing the store reports no leak.
 */
public final class LongContextStress {
    /**
     * @param model           geometry (use {@link ModelGeometry#withLayers} for a layer subset)
     * @param dtype           stored element types of K and V rows
     * @param tokensPerBlock  rows per block
     * @param slabBytes       slab size
     * @param tokens          tokens to stream
     * @param budget          rows per (layer, KV head) after each compression
     * @param interval        rows accumulated beyond the budget before compressing
     * @param sinks           leading rows always kept
     * @param chunk           tokens appended per call (1 = decoding one token at a time)
     * @param attentionEvery  run a decode-attention step every this many tokens (0 = never)
     * @param checkEvery      compare one layer's attention with the reference every this many attention steps
     * @param seed            synthetic data seed
     * @param policy          {@code window} (the sinks + recent stand-in) or a name of {@link Policies#NAMES}
     *                        except dynamic-budget ones
     */
    public record Config(ModelGeometry model, KvDtypes dtype, int tokensPerBlock, long slabBytes, long tokens, int budget,
                         int interval, int sinks, int chunk, int attentionEvery, int checkEvery, long seed,
                         String policy) {
        public Config {
            if (policy == null) {
                throw new IllegalArgumentException("policy must be one of " + Policies.NAMES);
            }
            CompressionPolicy p;
            try {
                p = Policies.byName(policy);
            } catch (KvArgumentException e) {
                throw new IllegalArgumentException("policy must be one of " + Policies.NAMES + ", got '" + policy
                        + "'");
            }
            if (p.dynamicBudget()) {
                throw new IllegalArgumentException(policy + " chooses its own budget, so no memory bound can be "
                        + "stated for it; use a fixed-budget policy (" + Policies.NAMES + " except dbudgetkv)");
            }
            if (tokens < 1 || budget < 1 || interval < 1 || sinks < 0 || sinks > budget || chunk < 1
                    || attentionEvery < 0 || checkEvery < 1 || tokensPerBlock < 1 || slabBytes < 1) {
                throw new IllegalArgumentException("long-context stress needs tokens, budget, interval, chunk, "
                        + "checkEvery, tokensPerBlock, slabBytes >= 1, 0 <= sinks <= budget, attentionEvery >= 0");
            }
            if ((long) budget + interval + chunk > Integer.MAX_VALUE / 2) {
                throw new IllegalArgumentException("budget + interval + chunk must stay below 2^30 rows");
            }
        }

        public KvLayout layout() {
            return model.layout(dtype.key(), tokensPerBlock).withDtypes(dtype.key(), dtype.value());
        }

        /** The policy package's policy (StreamingLLM with {@code sinks}). */
        public CompressionPolicy libraryPolicy() {
            CompressionPolicy p = Policies.byName(policy);
            return p.name().equals("streamingllm") ? Policies.streamingLlm(sinks) : p;
        }

        /** Whether every head of every layer gets the same budget (so each head is bounded by itself). */
        public boolean uniformBudgets() {
            return uniformLayers() && uniformHeads();
        }

        /** Whether every layer gets the same per-head budget (false for PyramidKV). */
        public boolean uniformLayers() {
            CompressionPolicy p = libraryPolicy();
            return p == null || Policies.isUniform(p.layerRule());
        }

        /** Whether every head of a layer gets the same budget (false for Ada-KV allocations). */
        public boolean uniformHeads() {
            CompressionPolicy p = libraryPolicy();
            return p == null || Policies.isUniform(p.headAllocation());
        }

        /**
         * Most rows one head keeps after a compression: the budget, or for PyramidKV twice the budget (its bottom
         * layer keeps {@code w + 2(B - w) - min}; with decoding-time compression the layers' lengths differ and the
         * pyramid no longer sums to the uniform total, so only this per-head cap holds).
         */
        public int keptRowsCap() {
            return uniformLayers() ? budget : 2 * budget;
        }

        /** Whether compression keeps exactly the sinks and the newest rows. */
        public boolean sinksAndRecent() {
            return policy.equalsIgnoreCase("streamingllm");
        }

        /**
         * Most rows one head can hold (just before a compression); with head-wise budgets this bounds the mean over
         * the heads of a layer instead.
         */
        public int maxRowsPerHead() {
            return keptRowsCap() + interval + chunk - 1;
        }

        /** Live-byte bound: every head at {@link #maxRowsPerHead()} rows, whole blocks. */
        public long liveBoundBytes() {
            return SlabMath.bytesOfBlocks(layout(), boundBlocks());
        }

        /** Reserved-byte bound: the live bound rounded up to whole slabs. */
        public long reservedBoundBytes() {
            return SlabMath.reservedFor(layout(), storeConfig(Long.MAX_VALUE), boundBlocks());
        }

        private long boundBlocks() {
            KvLayout l = layout();
            if (uniformHeads()) {
                long perHead = (maxRowsPerHead() + l.tokensPerBlock() - 1) / l.tokensPerBlock();
                return 2L * l.layers() * l.kvHeads() * perHead;
            }
            // Ada-KV moves budget between the heads of a layer but keeps the layer's total (it only clamps down).
            long layerRows = (long) l.kvHeads() * maxRowsPerHead();
            return 2L * l.layers() * ((layerRows + l.tokensPerBlock() - 1) / l.tokensPerBlock() + l.kvHeads());
        }

        StoreConfig storeConfig(long limit) {
            return new StoreConfig(limit, slabBytes);
        }
    }

    /** What a run did and found. */
    public record Result(Config config, String attention, long tokens, long compressions, long attentionSteps,
                         long attentionChecks, double maxAttentionError, long contentChecks, long peakLiveBytes,
                         long peakReservedBytes, long liveBoundBytes, long reservedBoundBytes, long finalReservedBytes,
                         long slabsAcquired, long slabsReleased, double seconds, double appendSeconds, double compressSeconds, double attentionSeconds,
                         long violationCount, List<String> violations, ProcessMemory process) {
        public boolean ok() {
            return violationCount == 0;
        }

        public double tokensPerSecond() {
            return tokens / seconds;
        }

        public Json json() {
            Config c = config;
            return Json.object()
                    .put("test", "long-context")
                    .put("model", c.model().name())
                    .put("layers", c.model().layers())
                    .put("kvHeads", c.model().kvHeads())
                    .put("headDim", c.model().headDim())
                    .put("dtype", c.dtype().label())
                    .put("tokensPerBlock", c.tokensPerBlock())
                    .put("slabBytes", c.slabBytes())
                    .put("budget", c.budget())
                    .put("interval", c.interval())
                    .put("sinks", c.sinks())
                    .put("chunk", c.chunk())
                    .put("attentionEvery", c.attentionEvery())
                    .put("attentionBackend", attention)
                    .put("policy", c.policy())
                    .put("tokens", tokens)
                    .put("compressions", compressions)
                    .put("attentionSteps", attentionSteps)
                    .put("attentionChecks", attentionChecks)
                    .put("maxAttentionError", maxAttentionError)
                    .put("contentChecks", contentChecks)
                    .put("peakLiveBytes", peakLiveBytes)
                    .put("peakReservedBytes", peakReservedBytes)
                    .put("liveBoundBytes", liveBoundBytes)
                    .put("reservedBoundBytes", reservedBoundBytes)
                    .put("finalReservedBytes", finalReservedBytes)
                    .put("slabsAcquired", slabsAcquired)
                    .put("slabsReleased", slabsReleased)
                    .put("seconds", seconds)
                    .put("tokensPerSecond", tokensPerSecond())
                    .put("appendSeconds", appendSeconds)
                    .put("compressSeconds", compressSeconds)
                    .put("attentionSeconds", attentionSeconds)
                    .put("processRssBytes", process.rssBytes())
                    .put("processHwmBytes", process.hwmBytes())
                    .put("violations", violationCount)
                    .put("violationMessages", violations)
                    .put("ok", ok());
        }

        public String summary() {
            Config c = config;
            return String.format(java.util.Locale.ROOT, """
                    long-context stress: %s, %s, %d tokens/block, policy %s, budget %d rows/head (+%d interval, chunk %d), %d sinks
                      streamed %,d tokens in %.1f s (%,.0f tokens/s): append %.1f s, compress %.1f s, attention %.1f s
                      compressions %,d; attention steps %,d (%s), reference checks %,d (max |err| %.3g); content checks %,d
                      peak live %s (bound %s), peak reserved %s (bound %s), reserved after close %s
                      slabs acquired %,d, released %,d (before close); process at the end of streaming: %s
                      violations: %d%s
                    """, c.model().name(), c.dtype(), c.tokensPerBlock(), c.policy(), c.budget(), c.interval(), c.chunk(),
                    c.sinks(), tokens, seconds, tokensPerSecond(), appendSeconds, compressSeconds, attentionSeconds,
                    compressions, attentionSteps, attention, attentionChecks, maxAttentionError, contentChecks,
                    Bytes.human(peakLiveBytes), Bytes.human(liveBoundBytes), Bytes.human(peakReservedBytes),
                    Bytes.human(reservedBoundBytes), Bytes.human(finalReservedBytes), slabsAcquired, slabsReleased,
                    process.describe(),
                    violationCount,
                    violations.isEmpty() ? "" : "\n    " + String.join("\n    ", violations));
        }
    }

    /** Absolute tolerance of the attention check: fp32 kernels vs a double reference on O(1) values. */
    static final double ATTENTION_TOLERANCE = 2e-4;

    private final Config config;
    private final SequenceAttention attention;
    private final PrintStream progressOut;

    /** @param progressOut where the progress bar goes (stderr), or null for none */
    public LongContextStress(Config config, SequenceAttention attention, PrintStream progressOut) {
        this.config = config;
        this.attention = attention;
        this.progressOut = progressOut;
    }

    public Result run() {
        return new Stream().run();
    }

    /** One run's state: the generator, the policy, the sequence and the counters the result reports. */
    private final class Stream {
        final Config c = config;
        final KvLayout layout = c.layout();
        final Violations violations = new Violations();
        final StructuredKv gen = new StructuredKv(layout, c.seed(), StructuredKv.Shape.realistic());
        final CompressionPolicy policy = c.libraryPolicy();
        final SyntheticPolicyInputs inputs = new SyntheticPolicyInputs(layout, gen, 0, c.seed());
        final int windowSize = policy.windowQueries();
        final SplittableRandom rnd = new SplittableRandom(c.seed() ^ 0xC0FFEE);
        final int width = layout.kvHeads() * layout.headDim();
        final long liveBound = c.liveBoundBytes();
        final long reservedBound = c.reservedBoundBytes();
        final float[] q = new float[layout.queryHeads() * layout.headDim()];
        final float[] out = new float[q.length];
        final float[] ref = new float[q.length];
        float[] k = new float[0];   // one chunk's generated rows, reused while the chunk size stays
        float[] v = new float[0];
        long compressions;
        long attentionSteps;
        long attentionChecks;
        long contentChecks;
        double maxErr;
        long appendNs;
        long compressNs;
        long attentionNs;
        long peakLive;
        long peakReserved;
        long finalReserved = -1;
        ProcessMemory process = new ProcessMemory(-1, -1);
        long slabsAcquired;
        long slabsReleased;
        long streamed;
        int rows;   // nominal rows per head: tokens since the start, back to the budget after a compression
        long statusAt;

        Result run() {
            long start = System.nanoTime();
            Compressor compressor = new Compressor();
            KvStore store = KvStore.open(layout, c.storeConfig(reservedBound));
            try {
                streamInto(store, compressor);
            } finally {
                compressor.close();
                try {
                    store.close();
                } catch (KvSlabException e) {
                    violations.add("store close reported a leak: " + e.getMessage());
                }
                finalReserved = store.stats().reservedBytes();
                violations.check(finalReserved == 0, "reserved bytes after close: " + finalReserved);
            }
            violations.check(peakLive <= liveBound, "peak live bytes " + peakLive + " exceed the bound " + liveBound);
            violations.check(peakReserved <= reservedBound, "peak reserved bytes " + peakReserved
                    + " exceed the bound " + reservedBound);
            double secs = (System.nanoTime() - start) / 1e9;
            return new Result(c, attention.name(), streamed, compressions, attentionSteps, attentionChecks, maxErr,
                    contentChecks, peakLive, peakReserved, liveBound, reservedBound, finalReserved, slabsAcquired,
                    slabsReleased, secs, appendNs / 1e9,
                    compressNs / 1e9, attentionNs / 1e9, violations.count(), violations.messages(), process);
        }

        /** Streams every token into one sequence, compressing and checking on the way; closes the sequence. */
        private void streamInto(KvStore store, Compressor compressor) {
            Progress bar = Progress.start(progressOut, "long-context", c.tokens(), "tokens");
            Sequence s = store.newSequence();
            long nextAttention = c.attentionEvery() == 0 ? Long.MAX_VALUE : c.attentionEvery() - 1;
            try {
                while (streamed < c.tokens()) {
                    int n = (int) Math.min(c.chunk(), c.tokens() - streamed);
                    boolean attend = nextAttention < streamed + n;
                    appendChunk(s, n, attend);
                    if (attend) {
                        attentionSteps++;
                        nextAttention = (streamed / c.attentionEvery() + 1) * c.attentionEvery() - 1;
                        if (attentionSteps % c.checkEvery() == 0) {
                            checkAttention(s);
                        }
                    }
                    if (rows >= c.budget() + c.interval()) {
                        compress(s, store, compressor);
                    }
                    showProgress(bar, store);
                }
            } catch (KvSlabException e) {
                violations.add("store or policy operation failed at token " + streamed + ": " + e);
            } finally {
                bar.close();
                StoreStats st = store.stats();
                peakLive = Math.max(peakLive, st.peakLiveBytes());
                peakReserved = Math.max(peakReserved, st.peakReservedBytes());
                slabsAcquired = st.slabsAcquired();
                slabsReleased = st.slabsReleased();
                process = ProcessMemory.now();
                s.close();
                StoreStats after = store.stats();
                violations.check(after.liveBytes() == 0 && after.liveBlocks() == 0, "closing the sequence left "
                        + after.liveBlocks() + " live blocks");
                violations.check(after.openSequences() == 0, after.openSequences() + " sequences still open");
            }
        }

        /** Appends the next {@code n} tokens to every layer; with {@code attend}, decodes the chunk's last query. */
        private void appendChunk(Sequence s, int n, boolean attend) {
            if (k.length != n * width) {
                k = new float[n * width];
                v = new float[n * width];
            }
            long[] pos = new long[n];
            for (int i = 0; i < n; i++) {
                pos[i] = streamed + i;
            }
            for (int l = 0; l < layout.layers(); l++) {
                gen.keys(0, l, pos, k);
                gen.values(0, l, pos, v);
                long t0 = System.nanoTime();
                if (n == 1) {
                    s.append(l, k, v, pos[0]);
                } else {
                    s.appendChunk(l, k, v, pos);
                }
                appendNs += System.nanoTime() - t0;
                if (attend) {
                    gen.query(0, l, pos[n - 1], q);
                    long t1 = System.nanoTime();
                    attention.decode(s, l, q, out);
                    attentionNs += System.nanoTime() - t1;
                }
            }
            streamed += n;
            rows += n;
        }

        /** One random layer's attention against the reference. */
        private void checkAttention(Sequence s) {
            int l = rnd.nextInt(layout.layers());
            gen.query(0, l, streamed - 1, q);
            attention.decode(s, l, q, out);
            ReferenceAttention.decodeExact(s, l, q, ref);
            double err = maxAbsDiff(out, ref);
            maxErr = Math.max(maxErr, err);
            attentionChecks++;
            violations.check(err <= ATTENTION_TOLERANCE, "attention of layer " + l + " at token "
                    + streamed + " differs from the reference by " + err + " (> "
                    + ATTENTION_TOLERANCE + ")");
        }

        /** Compresses back to the budget, then checks the selection, the accounting and a sample of the rows. */
        private void compress(Sequence s, KvStore store, Compressor compressor) {
            long[][] before = c.sinksAndRecent() ? null : positions(s);
            long end = streamed;
            long t2 = System.nanoTime();
            compressor.compress(s, policy, Budget.tokens(c.budget()), new LayerInputs(
                    l -> inputs.window(l, end, windowSize), l -> inputs.outputProjection()));
            compressNs += System.nanoTime() - t2;
            rows = c.budget();
            compressions++;
            if (c.sinksAndRecent()) {
                checkSinksAndRecent(s, streamed, violations);
            } else {
                checkSubsetWithinBudget(s, before, streamed, windowSize, policy, violations);
            }
            checkAccounting(s, store, streamed, violations);
            contentCheck(s, gen, rnd, violations);
            contentChecks++;
        }

        private void showProgress(Progress bar, KvStore store) {
            bar.stepTo(streamed);
            if (bar != Progress.NONE && streamed >= statusAt) {
                statusAt = streamed + 4096;
                StoreStats st = store.stats();
                bar.status("live " + Bytes.human(st.liveBytes()) + ", reserved "
                        + Bytes.human(st.reservedBytes()));
            }
        }
    }

    /** Every head holds exactly the sinks and the newest {@code budget - sinks} rows. */
    private void checkSinksAndRecent(Sequence s, long streamed, Violations violations) {
        Config c = config;
        KvLayout layout = c.layout();
        long[] expected = new long[c.budget()];
        for (int i = 0; i < c.sinks(); i++) {
            expected[i] = i;
        }
        int recent = c.budget() - c.sinks();
        for (int i = 0; i < recent; i++) {
            expected[c.sinks() + i] = streamed - recent + i;
        }
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                long[] p = s.positions(l, h);
                if (!Arrays.equals(p, expected)) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows with positions " + describe(p) + ", expected "
                            + describe(expected));
                    return;
                }
            }
        }
    }

    /**
     * Every head keeps a strictly increasing subsequence of its rows including every protected window row; with
     * uniform budgets exactly {@code budget} rows per head (or its protected rows if more), with Ada-KV at most the
     * layer's total budget, with PyramidKV at most {@link Config#keptRowsCap()} rows per head.
     */
    private void checkSubsetWithinBudget(Sequence s, long[][] before, long streamed, int windowSize,
                                         CompressionPolicy policy, Violations violations) {
        KvLayout layout = config.layout();
        boolean protectsWindow = policy.protection().observationWindow();
        long windowStart = streamed - Math.min(windowSize, streamed);
        long[] headRows = new long[layout.kvHeads()];
        long[] headRowsBefore = new long[layout.kvHeads()];
        long[] headBudget = new long[layout.kvHeads()];
        for (int l = 0; l < layout.layers(); l++) {
            long layerRows = 0;
            long layerRowsBefore = 0;
            long layerBudget = 0;
            for (int h = 0; h < layout.kvHeads(); h++) {
                long[] was = before[l * layout.kvHeads() + h];
                long[] p = s.positions(l, h);
                layerRows += p.length;
                int j = 0;
                for (int i = 0; i < p.length; i++) {
                    while (j < was.length && was[j] < p[i]) {
                        if (protectsWindow && was[j] >= windowStart) {
                            violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                                    + " dropped position " + was[j] + " of the observation window");
                            return;
                        }
                        j++;
                    }
                    if (j == was.length || was[j] != p[i] || (i > 0 && p[i] <= p[i - 1])) {
                        violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                                + " holds position " + p[i] + ", which it did not hold before or out of order");
                        return;
                    }
                    j++;
                }
                int prot = 0;
                for (long x : was) {
                    prot += (protectsWindow && x >= windowStart) || x < policy.protection().sinks() ? 1 : 0;
                }
                int nominal = Math.min(was.length, Math.max(config.budget(), prot));
                // pooled budgets (Ada-KV over a layer's heads, PyramidKV over a head's layers): max(budget, prot)
                // per table, the total capped by the rows there are
                layerBudget += Math.max(config.budget(), prot);
                layerRowsBefore += was.length;
                headRows[h] += p.length;
                headRowsBefore[h] += was.length;
                headBudget[h] += Math.max(config.budget(), prot);
                if (config.uniformBudgets() && p.length != nominal) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows; the uniform budget gives " + nominal);
                    return;
                }
                if (!config.uniformLayers() && p.length > Math.max(config.keptRowsCap(), prot)) {
                    violations.add("after compression at token " + streamed + ", layer " + l + " head " + h
                            + " holds " + p.length + " rows, more than " + config.keptRowsCap());
                    return;
                }
            }
            if (config.uniformLayers()) {
                long total = Math.min(layerRowsBefore, layerBudget);
                violations.check(layerRows == total, "after compression at token " + streamed + " layer " + l
                        + " holds " + layerRows + " rows, not its total budget " + total);
            }
        }
        if (!config.uniformLayers()) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                long total = Math.min(headRowsBefore[h], headBudget[h]);
                violations.check(headRows[h] == total, "after compression at token " + streamed + " KV head " + h
                        + " holds " + headRows[h] + " rows over all layers, not its total budget " + total);
            }
        }
    }

    /** Live bytes equal the blocks the heads' lengths need, exactly. */
    private void checkAccounting(Sequence s, KvStore store, long streamed, Violations violations) {
        KvLayout layout = config.layout();
        long blocks = 0;
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                blocks += 2L * ((s.length(l, h) + layout.tokensPerBlock() - 1) / layout.tokensPerBlock());
            }
        }
        long expectLive = SlabMath.bytesOfBlocks(layout, blocks);
        StoreStats st = store.stats();
        violations.check(st.liveBytes() == expectLive, "after compression at token " + streamed + " live bytes are "
                + st.liveBytes() + ", the retained rows need exactly " + expectLive);
        violations.check(st.liveBytes() == SlabMath.bytesOfBlocks(layout, st.liveBlocks()), "live bytes " + st.liveBytes()
                + " != live blocks x block bytes");
        violations.check(st.reservedBytes() >= st.liveBytes(), "reserved " + st.reservedBytes() + " < live "
                + st.liveBytes());
    }

    private static long[][] positions(Sequence s) {
        KvLayout layout = s.layout();
        long[][] p = new long[layout.layers() * layout.kvHeads()][];
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                p[l * layout.kvHeads() + h] = s.positions(l, h);
            }
        }
        return p;
    }

    /** Compares one random head's stored K and V rows with the regenerated synthetic rows, bit for bit. */
    private void contentCheck(Sequence s, StructuredKv gen, SplittableRandom rnd, Violations violations) {
        KvLayout layout = config.layout();
        int l = rnd.nextInt(layout.layers());
        int h = rnd.nextInt(layout.kvHeads());
        long[] pos = s.positions(l, h);
        String bad = StoredRows.mismatch(s, l, h, gen, pos, new long[pos.length], pos.length);
        if (bad != null) {
            violations.add(bad);
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (!(d <= m)) {
                m = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            }
        }
        return m;
    }

    private static String describe(long[] p) {
        if (p.length <= 8) {
            return Arrays.toString(p);
        }
        return "[" + p[0] + ", " + p[1] + ", ..., " + p[p.length - 2] + ", " + p[p.length - 1] + "] (" + p.length
                + " rows)";
    }
}
