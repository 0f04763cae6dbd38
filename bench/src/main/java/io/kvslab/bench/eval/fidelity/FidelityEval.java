package io.kvslab.bench.eval.fidelity;

import io.kvslab.Attention;
import io.kvslab.bench.eval.Bootstrap;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.RunComparison;
import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * {@code kvslab eval fidelity}: how much each compression policy changes the real model's predictions (see
 * docs/fidelity.md for the protocol).
 *
 * <p>For every text of the set (the built-in one or the user's {@code --texts}): the last {@code continuation} tokens
 * are the continuation, the rest the context. The full run prefills the context on an f32 KVSlab store, then
 * teacher-forces the continuation. For every policy and budget, the policy selects rows from the full run's state
 * right after the context (the same inputs a compressed run reads: its prefill is the same computation), a fresh run
 * prefills the context, the selection is applied with {@code Selection.applyTo} (rows really freed; the store's live
 * bytes are recorded), and the continuation is teacher-forced. For every other KV element type asked for, a full run
 * on a store of that type gives the quantisation-alone row ({@link #FULL}), and the policies select from that run's
 * state and compress runs on stores of that type. Metrics compare each run's logits with the f32 full run's over the
 * continuation steps, with 95% bootstrap intervals over texts; the per-head perturbation compares attention outputs
 * of the full run's continuation queries over all rows versus the kept rows (f32 only).
 */
public final class FidelityEval {
    /** CriticalKV variants and the base selection each is compared with. */
    static final Map<String, String> CRITICAL_BASES = Map.of("criticalkv", "snapkv", "criticaladakv", "adakv");
    /** Every policy compared with its base in the paired-difference table (in this order). */
    static final Map<String, String> BASES = orderedBases();
    static final String DYNAMIC = "dynamic";
    /** The row of the whole cache on a store of another element type: the quantisation alone. */
    public static final String FULL = "full";

    private static Map<String, String> orderedBases() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("criticalkv", "snapkv");
        m.put("criticaladakv", "adakv");
        m.put("criticaldbudgetkv", "dbudgetkv");
        return java.util.Collections.unmodifiableMap(m);
    }

    private FidelityEval() {
    }

    /** Runs the evaluation; {@code progress} receives one line per text (may be null). */
    public static FidelityReport run(LoadedModel loaded, EvalTextSet texts, FidelityConfig cfg,
                                     Consumer<String> progress) {
        long started = System.nanoTime();
        LlamaModel model = loaded.model();
        ModelConfig c = model.config();
        Map<String, CompressionPolicy> policies = new LinkedHashMap<>();
        for (String name : cfg.policies()) {
            policies.put(name, withWindow(Policies.byName(name), cfg));
        }
        CompressionPolicy dbudget = Policies.dbudgetKv();
        List<String> budgets = new ArrayList<>();
        for (double f : cfg.fractions()) {
            budgets.add(label(f));
        }
        if (cfg.dynamic()) {
            budgets.add(DYNAMIC);
        }
        float[][] wo = new float[c.layers()][];
        for (int l = 0; l < c.layers(); l++) {
            wo[l] = model.weights().wo(l);
        }

        Map<String, Accumulator> acc = new LinkedHashMap<>();
        Map<String, List<double[][]>> perturbations = new LinkedHashMap<>();
        Map<String, List<double[][]>> windowPerturbations = new LinkedHashMap<>();
        int used = 0;
        long contextTokens = 0;
        try (Compressor kernels = new Compressor()) {
            for (EvalTextSet.Story story : texts.stories()) {
                if (used == cfg.stories()) {
                    break;
                }
                int[] tokens = story.tokens(loaded.tokenizer().bos());
                long cap = Math.min(c.contextLength(), (long) cfg.maxContext() + cfg.continuation());
                if (tokens.length > cap) {
                    tokens = java.util.Arrays.copyOf(tokens, (int) cap);
                }
                int context = tokens.length - cfg.continuation();
                if (context < cfg.minContext()) {
                    continue;
                }
                used++;
                contextTokens += context;
                FullRun full = FullRun.run(model, cfg.tokensPerBlock(), attention(cfg), tokens, context,
                        cfg.window(), KvDtypes.F32);
                Perturbation perturbation = new Perturbation(full, wo, c.heads(), c.headDim());
                double dynamicFraction = Double.NaN;
                for (KvDtypes dtype : cfg.kvDtypes()) {
                    String dt = dtypeName(dtype);
                    // the compressed runs select from their own store's state: rows as that store holds them
                    FullRun state = dtype.equals(KvDtypes.F32) ? full : FullRun.run(model, cfg.tokensPerBlock(),
                            attention(cfg), tokens, context, cfg.window(), dtype);
                    if (!dtype.equals(KvDtypes.F32)) {
                        RunComparison cmp = RunComparison.of(full.logits, state.logits, tokens, context,
                                tokens.length);
                        acc.computeIfAbsent(key(FULL, dt, "100%"), k -> new Accumulator(FULL, dt, "100%"))
                                .add(1.0, state.contextLiveBytes, full.contextLiveBytes, cmp, null, null);
                        if (cfg.queryPrecision() != Attention.QueryPrecision.EXACT
                                && (dtype.key().isQuantized() || dtype.value().isQuantized())) {
                            lowPrecisionRows(model, cfg, tokens, context, full, state, dtype, acc);
                        }
                    }
                    double fraction = Double.NaN;
                    if (cfg.dynamic()) {
                        fraction = dbudget.select(state.atContext, Budget.dynamic(), kernels).keptFraction();
                        if (dtype.equals(KvDtypes.F32) || Double.isNaN(dynamicFraction)) {
                            dynamicFraction = fraction;
                        }
                    }
                    for (String b : budgets) {
                        for (Map.Entry<String, CompressionPolicy> e : policies.entrySet()) {
                            CompressionPolicy p = e.getValue();
                            Budget budget;
                            if (b.equals(DYNAMIC)) {
                                budget = p.dynamicBudget() ? Budget.dynamic() : Budget.fraction(fraction);
                            } else if (p.dynamicBudget()) {
                                continue; // DBudgetKV sets its own budget: it only appears in the dynamic column
                            } else {
                                budget = Budget.fraction(cfg.fractions().get(budgets.indexOf(b)));
                            }
                            Selection sel = p.select(state.atContext, budget, kernels);
                            long[] live = new long[1];
                            float[][] logits;
                            try (StoreSession run = new StoreSession(model, cfg.tokensPerBlock(), attention(cfg),
                                    dtype)) {
                                logits = TeacherForcing.run(run.session(), tokens, context, s -> {
                                    sel.applyTo(run.sequence());
                                    live[0] = run.store().stats().liveBytes();
                                });
                            }
                            RunComparison cmp = RunComparison.of(full.logits, logits, tokens, context,
                                    tokens.length);
                            double[][] pert = dtype.equals(KvDtypes.F32) ? perturbation.of(sel) : null;
                            double[][] windowPert = dtype.equals(KvDtypes.F32) ? perturbation.ofWindow(sel) : null;
                            String key = key(e.getKey(), dt, b);
                            acc.computeIfAbsent(key, k -> new Accumulator(e.getKey(), dt, b))
                                    .add(sel.keptFraction(), live[0], full.contextLiveBytes, cmp, pert, windowPert);
                            if (pert != null) {
                                perturbations.computeIfAbsent(key, k -> new ArrayList<>()).add(pert);
                                windowPerturbations.computeIfAbsent(key, k -> new ArrayList<>()).add(windowPert);
                            }
                        }
                    }
                }
                if (progress != null) {
                    progress.accept(String.format(Locale.ROOT, "text %d (%s): %d context + %d continuation "
                                    + "tokens%s", used, texts.origin(story), context, cfg.continuation(),
                            cfg.dynamic() ? String.format(Locale.ROOT, ", DBudgetKV kept %.1f%%",
                                    100 * dynamicFraction) : ""));
                }
            }
        }
        if (used == 0) {
            throw new IllegalArgumentException("no text of the set has " + cfg.minContext() + " context tokens plus "
                    + cfg.continuation() + " continuation tokens; lower --min-context or --continuation");
        }
        List<BudgetResult> results = new ArrayList<>();
        for (Accumulator a : acc.values()) {
            results.add(a.result());
        }
        List<PairedDifference> differences = new ArrayList<>();
        for (KvDtypes dtype : cfg.kvDtypes()) {
            Accumulator low = cfg.queryPrecision() == Attention.QueryPrecision.EXACT ? null
                    : acc.get(key(FULL, lowName(dtypeName(dtype), cfg), "100%"));
            Accumulator exact = acc.get(key(FULL, dtypeName(dtype), "100%"));
            if (low != null && exact != null) {
                differences.add(low.minus(exact)); // both against the f32 reference, paired over the texts
            }
            for (String b : budgets) {
                for (Map.Entry<String, String> e : BASES.entrySet()) {
                    Accumulator policy = acc.get(key(e.getKey(), dtypeName(dtype), b));
                    Accumulator base = acc.get(key(e.getValue(), dtypeName(dtype), b));
                    if (policy != null && base != null) {
                        differences.add(policy.minus(base));
                    }
                }
            }
        }
        List<HeadComparison> heads = new ArrayList<>();
        for (String b : budgets) {
            for (Map.Entry<String, String> e : CRITICAL_BASES.entrySet().stream().sorted(Map.Entry.comparingByKey())
                    .toList()) {
                for (String queries : List.of("continuation", "window")) {
                    Map<String, List<double[][]>> m = queries.equals("window") ? windowPerturbations : perturbations;
                    List<double[][]> crit = m.get(key(e.getKey(), "f32", b));
                    List<double[][]> base = m.get(key(e.getValue(), "f32", b));
                    if (crit != null && base != null) {
                        heads.add(compare(e.getKey(), e.getValue(), b, queries, crit, base));
                    }
                }
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        return new FidelityReport(model.name(), cfg, used, (double) contextTokens / used, results, differences, heads,
                seconds);
    }

    private static String key(String policy, String dtype, String budget) {
        return policy + "/" + dtype + "@" + budget;
    }

    /** The element types as the CLI spells them (f32, f16, q8_0/q4_0, ...). */
    static String dtypeName(KvDtypes dtype) {
        return dtype.label();
    }

    /** The SnapKV-family policies get the eval's observation window and pooling. */
    static CompressionPolicy withWindow(CompressionPolicy p, FidelityConfig cfg) {
        return p.withWindowScoring(cfg.window(), cfg.pooling(), cfg.kernel());
    }

    static String label(double fraction) {
        double pct = fraction * 100;
        return (Math.abs(pct - Math.rint(pct)) < 1e-9 ? String.valueOf((long) Math.rint(pct))
                : String.format(Locale.ROOT, "%.1f", pct)) + "%";
    }

    /** A fresh attention per session: the session's cache closes it (and its native scratch) when it closes. */
    private static SequenceAttention attention(FidelityConfig cfg) {
        return cfg.attention().equals("java") ? new ReferenceAttention() : KernelAttention.create(1);
    }

    /**
     * The dtype label of the whole-cache run in the low-precision mode: {@code +iq} for integer-query scores
     * (Q8_0), {@code +iq+iv} with integer value sums too (INT8), as native/bench/decode_dtypes.c names them; e.g.
     * {@code q8_0+iq+iv}.
     */
    static String lowName(String dtype, FidelityConfig cfg) {
        return dtype + switch (cfg.queryPrecision()) {
            case EXACT -> "";
            case Q8_0 -> "+iq";
            case INT8 -> "+iq+iv";
        };
    }

    /** The label of that run compared with the exact run on the same type, e.g. {@code q8_0+iq+iv vs q8_0}. */
    static String lowVsExactName(String dtype, FidelityConfig cfg) {
        return lowName(dtype, cfg) + " vs " + dtype;
    }

    /**
     * The whole cache on the quantised store of {@code exact} decoded in the configuration's low-precision mode:
     * one row against the f32 reference, one against the exact run on the same store type (its logits the
     * reference, so KL, top-1 and delta perplexity are the mode's alone).
     */
    private static void lowPrecisionRows(LlamaModel model, FidelityConfig cfg, int[] tokens, int context,
                                         FullRun full, FullRun exact, KvDtypes dtype,
                                         Map<String, Accumulator> acc) {
        FullRun low = FullRun.run(model, cfg.tokensPerBlock(), KernelAttention.create(1, cfg.queryPrecision()),
                tokens, context, cfg.window(), dtype);
        String dt = dtypeName(dtype);
        String name = lowName(dt, cfg);
        acc.computeIfAbsent(key(FULL, name, "100%"), k -> new Accumulator(FULL, name, "100%"))
                .add(1.0, low.contextLiveBytes, full.contextLiveBytes,
                        RunComparison.of(full.logits, low.logits, tokens, context, tokens.length), null, null);
        String vs = lowVsExactName(dt, cfg);
        acc.computeIfAbsent(key(FULL, vs, "100%"), k -> new Accumulator(FULL, vs, "100%"))
                .add(1.0, low.contextLiveBytes, exact.contextLiveBytes,
                        RunComparison.of(exact.logits, low.logits, tokens, context, tokens.length), null, null);
    }

    /** Per (layer, head) means over texts, and per instance. */
    static HeadComparison compare(String policy, String base, String budget, String queries,
                                  List<double[][]> crit, List<double[][]> baseRuns) {
        int layers = crit.get(0).length;
        int heads = crit.get(0)[0].length;
        int lower = 0;
        int equal = 0;
        int instances = 0;
        int instancesLower = 0;
        int instancesEqual = 0;
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) {
                double cs = 0;
                double bs = 0;
                for (int t = 0; t < crit.size(); t++) {
                    double cv = crit.get(t)[l][h];
                    double bv = baseRuns.get(t)[l][h];
                    cs += cv;
                    bs += bv;
                    instances++;
                    if (cv < bv) {
                        instancesLower++;
                    } else if (cv == bv) {
                        instancesEqual++;
                    }
                }
                if (cs < bs) {
                    lower++;
                } else if (cs == bs) {
                    equal++;
                }
            }
        }
        return new HeadComparison(policy, base, budget, queries, layers * heads, lower, equal, instances, instancesLower,
                instancesEqual);
    }

    /** Per-text values for one (policy, element type, budget): the means and the bootstrap intervals. */
    private static final class Accumulator {
        final String policy;
        final String dtype;
        final String budget;
        final List<Double> kept = new ArrayList<>();
        final List<Double> bytes = new ArrayList<>();
        final List<Double> bytesFraction = new ArrayList<>();
        final List<Double> kl = new ArrayList<>();
        final List<Double> top1 = new ArrayList<>();
        final List<Double> logPplFull = new ArrayList<>();
        final List<Double> logPplCompressed = new ArrayList<>();
        double maxKl;
        double perturbation;
        double windowPerturbation;

        Accumulator(String policy, String dtype, String budget) {
            this.policy = policy;
            this.dtype = dtype;
            this.budget = budget;
        }

        void add(double keptFraction, long liveBytes, long fullBytes, RunComparison cmp, double[][] pert,
                 double[][] windowPert) {
            kept.add(keptFraction);
            bytes.add((double) liveBytes);
            bytesFraction.add((double) liveBytes / fullBytes);
            kl.add(cmp.meanKl());
            maxKl = Math.max(maxKl, cmp.maxKl());
            top1.add(cmp.top1Agreement());
            logPplFull.add(Math.log(cmp.referencePerplexity()));
            logPplCompressed.add(Math.log(cmp.otherPerplexity()));
            perturbation += pert == null ? Double.NaN : mean(pert);
            windowPerturbation += windowPert == null ? Double.NaN : mean(windowPert);
        }

        private static double mean(double[][] a) {
            double s = 0;
            int n = 0;
            for (double[] row : a) {
                for (double v : row) {
                    s += v;
                    n++;
                }
            }
            return s / n;
        }

        private static double[] array(List<Double> values) {
            return values.stream().mapToDouble(Double::doubleValue).toArray();
        }

        private static double mean(List<Double> values) {
            return Bootstrap.mean(array(values), java.util.stream.IntStream.range(0, values.size()).toArray());
        }

        /** exp(mean log compressed) - exp(mean log full) over the texts of {@code sample}. */
        private static double deltaPpl(double[] logFull, double[] logCompressed, int[] sample) {
            return Math.exp(Bootstrap.mean(logCompressed, sample)) - Math.exp(Bootstrap.mean(logFull, sample));
        }

        BudgetResult result() {
            int texts = kl.size();
            double[] lf = array(logPplFull);
            double[] lc = array(logPplCompressed);
            return new BudgetResult(policy, dtype, budget, texts, mean(kept), mean(bytes), mean(bytesFraction),
                    mean(kl), maxKl, mean(top1), Math.exp(mean(logPplFull)), Math.exp(mean(logPplCompressed)),
                    perturbation / texts, windowPerturbation / texts, Bootstrap.mean(array(kl)),
                    Bootstrap.mean(array(top1)), Bootstrap.interval(texts, s -> deltaPpl(lf, lc, s)));
        }

        /** This policy minus {@code base}, paired over the same texts. */
        PairedDifference minus(Accumulator base) {
            double[] klA = array(kl);
            double[] klB = array(base.kl);
            double[] topA = array(top1);
            double[] topB = array(base.top1);
            double[] lcA = array(logPplCompressed);
            double[] lcB = array(base.logPplCompressed);
            Bootstrap.checkPaired(lcA, lcB);
            int[] all = java.util.stream.IntStream.range(0, klA.length).toArray();
            return new PairedDifference(policy, base.policy, dtype, budget, klA.length,
                    mean(kl) - mean(base.kl), Bootstrap.meanDifference(klA, klB),
                    mean(top1) - mean(base.top1), Bootstrap.meanDifference(topA, topB),
                    Math.exp(Bootstrap.mean(lcA, all)) - Math.exp(Bootstrap.mean(lcB, all)),
                    Bootstrap.interval(klA.length, s -> Math.exp(Bootstrap.mean(lcA, s))
                            - Math.exp(Bootstrap.mean(lcB, s))));
        }
    }
}
