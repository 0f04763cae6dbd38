package io.kvslab.bench.stress;

import io.kvslab.bench.geometry.SlabMath;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.KvStore;
import io.kvslab.bench.stress.ChurnStress.Op;
import io.kvslab.Sequence;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;
import io.kvslab.bench.eval.WholeContext;
import io.kvslab.policy.LayerInputs;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;

/**
 * One churn thread: random operations on its own sequences, each checked against their models; pauses at the
 * run's checkpoints (two barrier rounds) so the run can check the store's accounting.
 */
final class ChurnWorker implements Runnable {
    final ChurnStress run;
    final int id;
    final KvStore store;
    final CyclicBarrier barrier;
    final SplittableRandom rnd;
    final List<ChurnSequence> sequences = new ArrayList<>();
    long nextSalt;
    private Compressor compressor;
    private int nextPolicy;

    ChurnWorker(ChurnStress run, int id, KvStore store, CyclicBarrier barrier) {
        this.run = run;
        this.id = id;
        this.store = store;
        this.barrier = barrier;
        this.rnd = new SplittableRandom(run.config.seed() * 31 + id);
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
        while (!run.stop) {
            if (run.pause) {
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
        ChurnSequence t = sequences.isEmpty() ? null : sequences.get(rnd.nextInt(sequences.size()));
        int dice = rnd.nextInt(100);
        Op op;
        if (t == null || (dice < 8 && sequences.size() < run.config.sequencesPerThread())) {
            op = Op.CREATE;
        } else if (dice < 50) {
            op = t.maxRows() + 16 > run.config.maxRowsPerHead() ? Op.EVICT : Op.APPEND;
        } else if (dice < 58) {
            op = sequences.size() < run.config.sequencesPerThread() ? Op.FORK : Op.CLOSE;
        } else if (dice < 72) {
            op = Op.EVICT;
        } else if (dice < 75) {
            op = Op.COMPRESS;   // a few ms each (context read, scoring kernels): rarer than a plain eviction
        } else if (dice < 86) {
            op = Op.VERIFY;
        } else if (dice < 91) {
            op = run.checkAttention ? Op.ATTEND : Op.VERIFY;
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
            run.counts.get(op).increment();
        } catch (MemoryLimitExceededException e) {
            run.limitHits.increment();
            if (t != null && sequences.contains(t)) {
                verify(t, "after a refused " + op.name().toLowerCase(Locale.ROOT));
            }
            // Make room: drop the largest sequence.
            ChurnSequence big = null;
            for (ChurnSequence s : sequences) {
                if (big == null || s.maxRows() > big.maxRows()) {
                    big = s;
                }
            }
            if (big != null) {
                close(big);
            }
        } catch (RuntimeException | AssertionError e) {
            run.violations.add("thread " + id + ": " + op.name().toLowerCase(Locale.ROOT) + " threw " + e);
            // The model of that sequence may be out of step now: run.stop tracking it.
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
        ChurnSequence t = new ChurnSequence(run.layout, s, nextSalt++);
        sequences.add(t);
        appendTokens(t, 1 + rnd.nextInt(Math.max(1, run.config.maxRowsPerHead() / 2)), true);
    }

    void append(ChurnSequence t) {
        appendTokens(t, rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(16) : 1, false);
    }

    /** Appends n tokens (same positions in every layer, a random gap before them). Updates the model per layer. */
    void appendTokens(ChurnSequence t, int n, boolean chunk) {
        long first = t.nextPosition() + (rnd.nextInt(4) == 0 ? rnd.nextInt(3) : 0);
        long[] pos = new long[n];
        for (int i = 0; i < n; i++) {
            pos[i] = first + i;
        }
        int width = run.layout.kvHeads() * run.layout.headDim();
        float[] k = new float[n * width];
        float[] v = new float[n * width];
        for (int l = 0; l < run.layout.layers(); l++) {
            run.gen.keys(t.salt, l, pos, k);
            run.gen.values(t.salt, l, pos, v);
            if (n == 1 && !chunk) {
                t.seq.append(l, k, v, pos[0]);
            } else {
                t.seq.appendChunk(l, k, v, pos);
            }
            for (int h = 0; h < run.layout.kvHeads(); h++) {
                ChurnRows r = t.rows(l, h);
                for (long p : pos) {
                    r.add(p, t.salt);
                }
            }
        }
    }

    void fork(ChurnSequence t) {
        Sequence child = t.seq.fork();
        sequences.add(new ChurnSequence(child, nextSalt++, t));
    }

    /** Ragged eviction: one head, or every head of a layer; a random sample or sinks + recent window. */
    void evict(ChurnSequence t) {
        int l = rnd.nextInt(run.layout.layers());
        boolean wholeLayer = rnd.nextBoolean();
        int h0 = wholeLayer ? 0 : rnd.nextInt(run.layout.kvHeads());
        int h1 = wholeLayer ? run.layout.kvHeads() : h0 + 1;
        for (int h = h0; h < h1; h++) {
            ChurnRows r = t.rows(l, h);
            if (r.n == 0) {
                continue;
            }
            int[] keep;
            if (rnd.nextBoolean()) {
                int sinks = Math.min(4, r.n);
                keep = run.sinksAndRecent(r.n, sinks, Math.max(sinks, r.n / 2 + 1));
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
    void compress(ChurnSequence t) {
        if (compressor == null) {
            compressor = new Compressor();
        }
        CompressionPolicy policy = Policies.byName(Policies.NAMES.get(nextPolicy++ % Policies.NAMES.size()));
        long end = t.nextPosition();
        if (end == 0) {
            return;
        }
        SyntheticPolicyInputs inputs = new SyntheticPolicyInputs(run.layout, run.gen, t.salt, run.config.seed());
        List<LayerInputs> layerInputs = new ArrayList<>();
        for (int l = 0; l < run.layout.layers(); l++) {
            layerInputs.add((policy.windowQueries() > 0 ? inputs.window(l, end, policy.windowQueries())
                    : LayerInputs.none())
                    .withOutputProjection(policy.needsOutputProjection() ? run.sharedOutputProjection(inputs) : null));
        }
        Budget budget = policy.dynamicBudget() ? Budget.dynamic() : Budget.fraction(0.5);
        Selection sel = policy.select(WholeContext.read(t.seq, layerInputs), budget, compressor);
        for (int l = 0; l < run.layout.layers(); l++) {
            t.seq.keep(l, sel.kept()[l]); // all heads of the layer or none
            for (int h = 0; h < run.layout.kvHeads(); h++) {
                if (!sel.keepsAll(l, h)) {
                    t.rows(l, h).keep(sel.kept(l, h));
                }
            }
        }
    }

    void verify(ChurnSequence t, String when) {
        long expectBlocks = 0;
        int tpb = run.layout.tokensPerBlock();
        for (int l = 0; l < run.layout.layers(); l++) {
            for (int h = 0; h < run.layout.kvHeads(); h++) {
                ChurnRows r = t.rows(l, h);
                long[] p = t.seq.positions(l, h);
                if (p.length != r.n || !Arrays.equals(p, 0, r.n, r.pos, 0, r.n)) {
                    run.violations.add("thread " + id + " " + when + ": sequence " + t.seq.id() + " layer " + l
                            + " head " + h + " holds positions " + run.brief(p, p.length) + ", expected "
                            + run.brief(r.pos, r.n));
                    return;
                }
                for (int i = 1; i < p.length; i++) {
                    if (p[i] <= p[i - 1]) {
                        run.violations.add("thread " + id + " " + when + ": positions not increasing in layer " + l
                                + " head " + h + " of sequence " + t.seq.id());
                        return;
                    }
                }
                expectBlocks += 2L * ((r.n + tpb - 1) / tpb);
            }
        }
        run.violations.check(t.seq.referencedBytes() == SlabMath.bytesOfBlocks(run.layout, expectBlocks), "thread " + id + " "
                + when + ": sequence " + t.seq.id() + " references " + t.seq.referencedBytes()
                + " bytes, its lengths need " + SlabMath.bytesOfBlocks(run.layout, expectBlocks));
        int l = rnd.nextInt(run.layout.layers());
        int h = rnd.nextInt(run.layout.kvHeads());
        ChurnRows r = t.rows(l, h);
        String bad = StoredRows.mismatch(t.seq, l, h, run.gen, r.pos, r.salt, r.n);
        if (bad != null) {
            run.violations.add("thread " + id + " " + when + ": sequence " + t.seq.id() + " " + bad);
        }
    }

    void attend(ChurnSequence t) {
        int l = rnd.nextInt(run.layout.layers());
        float[] q = new float[run.layout.queryHeads() * run.layout.headDim()];
        float[] out = new float[q.length];
        float[] ref = new float[q.length];
        run.gen.query(t.salt, l, t.nextPosition(), q);
        run.attention.decode(t.seq, l, q, out);
        ReferenceAttention.decodeExact(t.seq, l, q, ref);
        double err = LongContextStress.maxAbsDiff(out, ref);
        run.recordAttentionError(err);
        run.attentionChecks.increment();
        run.violations.check(err <= LongContextStress.ATTENTION_TOLERANCE, "thread " + id + ": attention of "
                + "sequence " + t.seq.id() + " layer " + l + " differs from the reference by " + err);
    }

    void close(ChurnSequence t) {
        sequences.remove(t);
        t.seq.close();
    }

    void closeAll() {
        for (ChurnSequence t : List.copyOf(sequences)) {
            close(t);
        }
    }
}
