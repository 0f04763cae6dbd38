package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.RunComparison;
import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.policy.PolicyWorkspace;
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
 * <p>For every text of the reproducible set: the last {@code continuation} tokens are the continuation, the rest the
 * context. The full run prefills the context on a KVSlab store, then teacher-forces the continuation. For every
 * policy and budget, the policy selects rows from the full run's state right after the context (the same inputs a
 * compressed run reads: its prefill is the same computation), a fresh run prefills the context, the selection is
 * applied with {@code Sequence.retain} (rows really freed; the store's live bytes are recorded), and the continuation is
 * teacher-forced. Metrics compare the two runs' logits over the continuation steps; the per-head perturbation
 * compares attention outputs of the full run's continuation queries over all rows versus the kept rows.
 */
public final class FidelityEval {
    /** CriticalKV variants and the base selection each is compared with. */
    static final Map<String, String> CRITICAL_BASES = Map.of("criticalkv", "snapkv", "criticaladakv", "adakv");
    static final String DYNAMIC = "dynamic";

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
        try (PolicyWorkspace kernels = PolicyWorkspace.create()) {
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
                        cfg.window());
                Perturbation perturbation = new Perturbation(full, wo, c.heads(), c.headDim());
                double dynamicFraction = Double.NaN;
                if (cfg.dynamic()) {
                    dynamicFraction = dbudget.select(full.atContext, Budget.dynamic(), kernels).keptFraction();
                }
                for (String b : budgets) {
                    for (Map.Entry<String, CompressionPolicy> e : policies.entrySet()) {
                        CompressionPolicy p = e.getValue();
                        Budget budget;
                        if (b.equals(DYNAMIC)) {
                            budget = p.dynamicBudget() ? Budget.dynamic() : Budget.fraction(dynamicFraction);
                        } else if (p.dynamicBudget()) {
                            continue; // DBudgetKV sets its own budget: it only appears in the dynamic column
                        } else {
                            budget = Budget.fraction(cfg.fractions().get(budgets.indexOf(b)));
                        }
                        Selection sel = p.select(full.atContext, budget, kernels);
                        long[] live = new long[1];
                        float[][] logits;
                        try (StoreSession run = new StoreSession(model, cfg.tokensPerBlock(), attention(cfg))) {
                            logits = TeacherForcing.run(run.session(), tokens, context, s -> {
                                sel.applyTo(run.sequence());
                                live[0] = run.store().stats().liveBytes();
                            });
                        }
                        RunComparison cmp = RunComparison.of(full.logits, logits, tokens, context, tokens.length);
                        double[][] pert = perturbation.of(sel);
                        double[][] windowPert = perturbation.ofWindow(sel);
                        String key = e.getKey() + "@" + b;
                        acc.computeIfAbsent(key, k -> new Accumulator(e.getKey(), b))
                                .add(sel, live[0], full.contextLiveBytes, cmp, pert, windowPert);
                        perturbations.computeIfAbsent(key, k -> new ArrayList<>()).add(pert);
                        windowPerturbations.computeIfAbsent(key, k -> new ArrayList<>()).add(windowPert);
                    }
                }
                if (progress != null) {
                    progress.accept(String.format(Locale.ROOT, "text %d (seed %d): %d context + %d continuation "
                                    + "tokens%s", used, story.seed(), context, cfg.continuation(),
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
        List<HeadComparison> heads = new ArrayList<>();
        for (String b : budgets) {
            for (Map.Entry<String, String> e : CRITICAL_BASES.entrySet().stream().sorted(Map.Entry.comparingByKey())
                    .toList()) {
                for (String queries : List.of("continuation", "window")) {
                    Map<String, List<double[][]>> m = queries.equals("window") ? windowPerturbations : perturbations;
                    List<double[][]> crit = m.get(e.getKey() + "@" + b);
                    List<double[][]> base = m.get(e.getValue() + "@" + b);
                    if (crit != null && base != null) {
                        heads.add(compare(e.getKey(), e.getValue(), b, queries, crit, base));
                    }
                }
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        return new FidelityReport(model.name(), cfg, used, (double) contextTokens / used, results, heads, seconds);
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

    /** Sums over texts for one (policy, budget). */
    private static final class Accumulator {
        final String policy;
        final String budget;
        int texts;
        double kept;
        double bytes;
        double bytesFraction;
        double kl;
        double maxKl;
        double top1;
        double logPplFull;
        double logPplCompressed;
        double perturbation;
        double windowPerturbation;

        Accumulator(String policy, String budget) {
            this.policy = policy;
            this.budget = budget;
        }

        void add(Selection sel, long liveBytes, long fullBytes, RunComparison cmp, double[][] pert,
                 double[][] windowPert) {
            texts++;
            kept += sel.keptFraction();
            bytes += liveBytes;
            bytesFraction += (double) liveBytes / fullBytes;
            kl += cmp.meanKl();
            maxKl = Math.max(maxKl, cmp.maxKl());
            top1 += cmp.top1Agreement();
            logPplFull += Math.log(cmp.referencePerplexity());
            logPplCompressed += Math.log(cmp.otherPerplexity());
            perturbation += mean(pert);
            windowPerturbation += mean(windowPert);
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

        BudgetResult result() {
            return new BudgetResult(policy, budget, texts, kept / texts, bytes / texts, bytesFraction / texts,
                    kl / texts, maxKl, top1 / texts, Math.exp(logPplFull / texts), Math.exp(logPplCompressed / texts),
                    perturbation / texts, windowPerturbation / texts);
        }
    }
}
