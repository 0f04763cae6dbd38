package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.KvTensor;
import io.kvslab.Sequence;
import io.kvslab.StoreStats;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.report.Bytes;
import io.kvslab.bench.report.ProcessMemory;
import io.kvslab.bench.report.Progress;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * One run of {@link LongContextStress}: the generator, the policy, the sequence and the counters the result
 * reports. Streams the tokens, compresses at every trigger, decodes and checks on the way (the checks of a
 * compression are {@link CompressionChecks}).
 */
final class LongContextRun {
    private final SequenceAttention attention;
    private final PrintStream progressOut;
    private final CompressionChecks checks;
    private final LongContextConfig c;
    private final KvLayout layout;
    private final Violations violations;
    private final StructuredKv gen;
    private final CompressionPolicy policy;
    private final SyntheticPolicyInputs inputs;
    private final int windowSize;
    private final SplittableRandom rnd;
    private final int width;
    private final long liveBound;
    private final long reservedBound;
    private final float[] q;
    private final float[] out;
    private final float[] ref;
    private float[] k = new float[0];   // one chunk's generated rows, reused while the chunk size stays
    private float[] v = new float[0];
    /**
     * Whether both sides are stored as f16: then the rows are handed to the store as f16 tensors, views of the
     * generator's f16 tables ({@link StructuredKv#keysF16View}) or rows written as f16 ({@link StructuredKv#keysF16}),
     * which it copies without a conversion (the same bytes the float path stores: the generator rounds exactly as
     * the store's f32-to-f16 conversion does).
     */
    private final boolean f16;
    private short[] kh = new short[0];
    private short[] vh = new short[0];
    private KvTensor kt;   // views of kh and vh, remade when the chunk size changes
    private KvTensor vt;
    private long compressions;
    private long attentionSteps;
    private long attentionChecks;
    private long contentChecks;
    private double maxErr;
    private long appendNs;
    private long compressNs;
    private long attentionNs;
    private long peakLive;
    private long peakReserved;
    private long finalReserved = -1;
    private ProcessMemory process = new ProcessMemory(-1, -1);
    private long slabsAcquired;
    private long slabsReleased;
    private long streamed;
    private int rows;   // nominal rows per head: tokens since the start, back to the budget after a compression
    private long statusAt;


    /** @param progressOut where the progress bar goes (stderr), or null for none */
    LongContextRun(LongContextConfig config, SequenceAttention attention, PrintStream progressOut) {
        this.attention = attention;
        this.progressOut = progressOut;
        this.checks = new CompressionChecks(config);
        this.c = config;
        this.layout = c.layout();
        this.violations = new Violations();
        this.gen = new StructuredKv(layout, c.seed(), StructuredKv.Shape.realistic());
        this.policy = c.libraryPolicy();
        this.inputs = new SyntheticPolicyInputs(layout, gen, 0, c.seed());
        this.windowSize = policy.windowQueries();
        this.rnd = new SplittableRandom(c.seed() ^ 0xC0FFEE);
        this.width = layout.kvHeads() * layout.headDim();
        this.f16 = layout.keyDtype() == DType.F16 && layout.valueDtype() == DType.F16;
        this.liveBound = c.liveBoundBytes();
        this.reservedBound = c.reservedBoundBytes();
        this.q = new float[layout.queryHeads() * layout.headDim()];
        this.out = new float[q.length];
        this.ref = new float[q.length];
    }

    LongContextResult run() {
        long start = System.nanoTime();
        Compressor compressor = new Compressor();
        KvStore store = KvStore.open(layout, c.storeConfig(reservedBound));
        try {
            streamInto(store, compressor);
        } finally {
            compressor.close();
            finalReserved = violations.closeAndCheck(store);
        }
        violations.check(peakLive <= liveBound, "peak live bytes " + peakLive + " exceed the bound " + liveBound);
        violations.check(peakReserved <= reservedBound, "peak reserved bytes " + peakReserved
                + " exceed the bound " + reservedBound);
        double secs = (System.nanoTime() - start) / 1e9;
        return new LongContextResult(c, attention.name(), streamed, compressions, attentionSteps, attentionChecks, maxErr,
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
        long[] pos = new long[n];
        for (int i = 0; i < n; i++) {
            pos[i] = streamed + i;
        }
        for (int l = 0; l < layout.layers(); l++) {
            if (f16) {
                appendF16(s, l, n, pos);
            } else {
                appendFloats(s, l, n, pos);
            }
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

    private void appendFloats(Sequence s, int l, int n, long[] pos) {
        if (k.length != n * width) {
            k = new float[n * width];
            v = new float[n * width];
        }
        gen.keys(0, l, pos, k);
        gen.values(0, l, pos, v);
        long t0 = System.nanoTime();
        if (n == 1) {
            s.append(l, k, v, pos[0]);
        } else {
            s.appendChunk(l, k, v, pos);
        }
        appendNs += System.nanoTime() - t0;
    }

    /**
     * One token: the generator's f16 tables viewed in place ({@link StructuredKv#keysF16View}), so the store's copy
     * into its blocks is the only copy of the rows; a token with a sink or heavy-hitter key row in some head (one in
     * 1024 per head with the default shape: about one token in 128 per layer with 8 KV heads) and a chunk of several
     * tokens are written into {@link #kh} / {@link #vh} first.
     */
    private void appendF16(Sequence s, int l, int n, long[] pos) {
        if (n == 1) {
            KvTensor keys = gen.keysF16View(0, l, pos[0]);
            if (keys != null) {
                KvTensor values = gen.valuesF16View(0, l, pos[0]);
                long t0 = System.nanoTime();
                s.append(l, keys, values, pos[0]);
                appendNs += System.nanoTime() - t0;
                return;
            }
        }
        if (kh.length != n * width) {
            kh = new short[n * width];
            vh = new short[n * width];
            kt = KvTensor.of(MemorySegment.ofArray(kh), DType.F16, n, layout.kvHeads(), layout.headDim());
            vt = KvTensor.of(MemorySegment.ofArray(vh), DType.F16, n, layout.kvHeads(), layout.headDim());
        }
        gen.keysF16(0, l, pos, kh);
        gen.valuesF16(0, l, pos, vh);
        long t0 = System.nanoTime();
        if (n == 1) {
            s.append(l, kt, vt, pos[0]);
        } else {
            s.appendChunk(l, kt, vt, pos);
        }
        appendNs += System.nanoTime() - t0;
    }

    /** One random layer's attention against the reference. */
    private void checkAttention(Sequence s) {
        int l = rnd.nextInt(layout.layers());
        gen.query(0, l, streamed - 1, q);
        attention.decode(s, l, q, out);
        ReferenceAttention.decodeExact(s, l, q, ref);
        double err = LongContextStress.maxAbsDiff(out, ref);
        maxErr = Math.max(maxErr, err);
        attentionChecks++;
        violations.check(err <= LongContextStress.ATTENTION_TOLERANCE, "attention of layer " + l + " at token "
                + streamed + " differs from the reference by " + err + " (> "
                + LongContextStress.ATTENTION_TOLERANCE + ")");
    }

    /** Compresses back to the budget, then checks the selection, the accounting and a sample of the rows. */
    private void compress(Sequence s, KvStore store, Compressor compressor) {
        long[][] before = c.sinksAndRecent() ? null : CompressionChecks.positions(s);
        long end = streamed;
        long t2 = System.nanoTime();
        compressor.compress(s, policy, Budget.tokens(c.budget()), l -> inputs.forPolicy(policy, l, end, windowSize));
        compressNs += System.nanoTime() - t2;
        rows = c.budget();
        compressions++;
        if (c.sinksAndRecent()) {
            checks.sinksAndRecent(s, streamed, violations);
        } else {
            checks.subsetWithinBudget(s, before, streamed, windowSize, policy, violations);
        }
        checks.accounting(s, store, streamed, violations);
        checks.content(s, gen, rnd, violations);
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
