package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The configured compression methods, with the defaults of {@code research/algorithms.md}. Every parameter can be
 * changed through the overloads or the policy's {@code with...} methods.
 *
 * <table>
 *   <caption>Methods</caption>
 *   <tr><th>name</th><th>protection</th><th>score</th><th>layers</th><th>heads</th><th>selection</th></tr>
 *   <tr><td>streamingllm</td><td>4 sinks</td><td>recency</td><td>uniform</td><td>uniform</td><td>top-k</td></tr>
 *   <tr><td>knorm</td><td>none</td><td>-||k||</td><td>uniform</td><td>uniform</td><td>top-k</td></tr>
 *   <tr><td>snapkv</td><td>window</td><td>window attention (32, max-pool 7)</td><td>uniform</td><td>uniform</td>
 *       <td>top-k</td></tr>
 *   <tr><td>adakv</td><td>window</td><td>window attention</td><td>uniform</td><td>Ada-KV, alpha 0.2</td>
 *       <td>top-k</td></tr>
 *   <tr><td>pyramidkv</td><td>window</td><td>window attention</td><td>pyramid, beta 20</td><td>uniform</td>
 *       <td>top-k</td></tr>
 *   <tr><td>criticalkv</td><td>window</td><td>window attention</td><td>uniform</td><td>uniform</td>
 *       <td>two-stage, alpha 0.5, eps 1e-4</td></tr>
 *   <tr><td>criticaladakv</td><td>window</td><td>window attention</td><td>uniform</td><td>Ada-KV, alpha 0.2</td>
 *       <td>two-stage</td></tr>
 *   <tr><td>dbudgetkv</td><td>4 sinks</td><td>recency</td><td>norm-loss stop, T 1%</td><td>uniform</td>
 *       <td>top-k; layers 0, 1 whole</td></tr>
 *   <tr><td>criticaldbudgetkv</td><td>window</td><td>window attention</td><td>DBudgetKV's count per layer (its
 *       sinks, recency ranking and norm-loss stop, T 1%)</td><td>uniform</td><td>two-stage; layers 0, 1 whole</td>
 *       </tr>
 * </table>
 */
public final class Policies {
    /** Names accepted by {@link #byName}. */
    public static final List<String> NAMES = List.of("streamingllm", "knorm", "snapkv", "adakv", "pyramidkv",
            "criticalkv", "criticaladakv", "dbudgetkv", "criticaldbudgetkv");

    /**
     * Further names {@link #byName} accepts: CriticalKV and CriticalAdaKV with the {@link ValueNorm#L2} value norm
     * (not in {@link #NAMES}, which lists one name per method).
     */
    public static final List<String> L2_VARIANTS = List.of("criticalkv-l2", "criticaladakv-l2");

    /** StreamingLLM's and DBudgetKV's attention sinks. */
    public static final int DEFAULT_SINKS = 4;
    /** Ada-KV safeguard (kvpress, and the authors' advice with GQA). */
    public static final double DEFAULT_ADA_ALPHA = 0.2;
    /** PyramidKV steepness. */
    public static final int DEFAULT_PYRAMID_BETA = 20;

    private Policies() {
    }

    /**
     * A policy by its name in {@link #NAMES} or {@link #L2_VARIANTS} (case-insensitive), with default parameters.
     *
     * @param name one of {@link #NAMES} or {@link #L2_VARIANTS}, any case
     * @return a new policy with the method's default parameters
     * @throws KvArgumentException if the name is unknown (the message lists the known ones)
     */
    public static CompressionPolicy byName(String name) {
        String n = name == null ? "" : name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
        return switch (n) {
            case "streamingllm" -> streamingLlm();
            case "knorm" -> knorm();
            case "snapkv" -> snapKv();
            case "adakv" -> adaKv();
            case "pyramidkv" -> pyramidKv();
            case "criticalkv" -> criticalKv();
            case "criticaladakv" -> criticalAdaKv();
            case "criticalkvl2" -> criticalKv(ValueNorm.L2);
            case "criticaladakvl2" -> criticalAdaKv(ValueNorm.L2);
            case "dbudgetkv", "refreekv" -> dbudgetKv();
            case "criticaldbudgetkv" -> criticalDbudgetKv();
            default -> throw new KvArgumentException("unknown policy '" + name + "'; known: " + String.join(", ", NAMES));
        };
    }

    /**
     * StreamingLLM with 4 sinks: keeps the sinks and the newest rows (absolute positions kept, no re-rotation).
     *
     * @return the policy
     */
    public static CompressionPolicy streamingLlm() {
        return streamingLlm(DEFAULT_SINKS);
    }

    /**
     * StreamingLLM with {@code sinks} sinks.
     *
     * @param sinks leading rows always kept, {@code >= 0}
     * @return the policy
     */
    public static CompressionPolicy streamingLlm(int sinks) {
        return new CompressionPolicy("streamingllm", Protection.sinks(sinks), new RecencyScorer(),
                new UniformLayers(), new UniformHeads(), new TopKSelector(), Set.of());
    }

    /**
     * Knorm (kvpress KnormPress): keeps the keys with the smallest L2 norm; nothing protected.
     *
     * @return the policy
     */
    public static CompressionPolicy knorm() {
        return new CompressionPolicy("knorm", Protection.none(), new KeyNormScorer(), new UniformLayers(),
                new UniformHeads(), new TopKSelector(), Set.of());
    }

    /**
     * SnapKV with the authors' scoring (window 32, max-pool 7, GQA mean).
     *
     * @return the policy
     */
    public static CompressionPolicy snapKv() {
        return snapKv(WindowAttentionScorer.authors());
    }

    /**
     * SnapKV with the given window scoring (e.g. {@link #windowAttentionKvpress()}).
     *
     * @param scoring the observation-window scorer, e.g. {@link #windowAttention(int, WindowPooling, int)}
     * @return the policy
     */
    public static CompressionPolicy snapKv(Scorer scoring) {
        return new CompressionPolicy("snapkv", Protection.window(), scoring, new UniformLayers(), new UniformHeads(),
                new TopKSelector(), Set.of());
    }

    /**
     * Ada-KV over SnapKV scores, safeguard 0.2.
     *
     * @return the policy
     */
    public static CompressionPolicy adaKv() {
        return adaKv(WindowAttentionScorer.authors(), DEFAULT_ADA_ALPHA);
    }

    /**
     * Ada-KV over the given window scoring with safeguard {@code alpha}.
     *
     * @param scoring the observation-window scorer
     * @param alpha Ada-KV safeguard, the share of each head's budget given uniformly, in {@code [0, 1]}
     * @return the policy
     */
    public static CompressionPolicy adaKv(Scorer scoring, double alpha) {
        return snapKv(scoring).withName("adakv").withHeadAllocation(new AdaKvHeads(alpha));
    }

    /**
     * PyramidKV: SnapKV scores with pyramid layer budgets, beta 20.
     *
     * @return the policy
     */
    public static CompressionPolicy pyramidKv() {
        return pyramidKv(WindowAttentionScorer.authors(), DEFAULT_PYRAMID_BETA);
    }

    /**
     * PyramidKV with the given scoring and steepness.
     *
     * @param scoring the observation-window scorer
     * @param beta pyramid steepness, {@code >= 1} (larger: steeper decrease of the budget from the first to the last
     *         layer)
     * @return the policy
     */
    public static CompressionPolicy pyramidKv(Scorer scoring, int beta) {
        return snapKv(scoring).withName("pyramidkv").withLayerRule(new PyramidLayers(beta));
    }

    /**
     * CriticalKV on SnapKV: two-stage selection, alpha 0.5, eps 1e-4.
     *
     * @return the policy
     */
    public static CompressionPolicy criticalKv() {
        return criticalKv(WindowAttentionScorer.authors(), CriticalSelector.defaults());
    }

    /**
     * CriticalKV on SnapKV with the defaults and the given value norm; named {@code criticalkv-l2} for
     * {@link ValueNorm#L2}.
     *
     * @param norm the second stage's value norm ({@link ValueNorm#L1} is {@link #criticalKv()})
     * @return the policy
     * @throws KvArgumentException if {@code norm} is null
     */
    public static CompressionPolicy criticalKv(ValueNorm norm) {
        CompressionPolicy p = criticalKv(WindowAttentionScorer.authors(), criticalSelection(0.5, 1e-4, norm));
        return norm == ValueNorm.L2 ? p.withName("criticalkv-l2") : p;
    }

    /**
     * CriticalKV on SnapKV with the given scoring and stages.
     *
     * @param scoring the observation-window scorer
     * @param stages the selector, normally {@link #criticalSelection(double, double)}
     * @return the policy
     */
    static CompressionPolicy criticalKv(Scorer scoring, Selector stages) {
        return snapKv(scoring).withName("criticalkv").withSelector(stages);
    }

    /**
     * CriticalAdaKV: Ada-KV budgets (alpha 0.2) then the two stages per head.
     *
     * @return the policy
     */
    public static CompressionPolicy criticalAdaKv() {
        return criticalAdaKv(WindowAttentionScorer.authors(), DEFAULT_ADA_ALPHA, CriticalSelector.defaults());
    }

    /**
     * CriticalAdaKV (Ada-KV alpha 0.2, two stages alpha 0.5, eps 1e-4) with the given value norm; named
     * {@code criticaladakv-l2} for {@link ValueNorm#L2}.
     *
     * @param norm the second stage's value norm ({@link ValueNorm#L1} is {@link #criticalAdaKv()})
     * @return the policy
     * @throws KvArgumentException if {@code norm} is null
     */
    public static CompressionPolicy criticalAdaKv(ValueNorm norm) {
        CompressionPolicy p = criticalAdaKv(WindowAttentionScorer.authors(), DEFAULT_ADA_ALPHA,
                criticalSelection(0.5, 1e-4, norm));
        return norm == ValueNorm.L2 ? p.withName("criticaladakv-l2") : p;
    }

    /**
     * CriticalAdaKV with the given scoring, Ada-KV safeguard and stages.
     *
     * @param scoring the observation-window scorer
     * @param adaAlpha Ada-KV safeguard, in {@code [0, 1]}
     * @param stages the per-head selector, normally {@link #criticalSelection(double, double)}
     * @return the policy
     */
    static CompressionPolicy criticalAdaKv(Scorer scoring, double adaAlpha, Selector stages) {
        return adaKv(scoring, adaAlpha).withName("criticaladakv").withSelector(stages);
    }

    /**
     * DBudgetKV with the paper's settings: 4 sinks then newest to oldest, T = 1%, last row, layers 0 and 1 whole.
     *
     * @return the policy; it takes {@link Budget#dynamic()}
     */
    public static CompressionPolicy dbudgetKv() {
        return dbudgetKv(NormLossStop.paper(), DEFAULT_SINKS, Set.of(0, 1));
    }

    /**
     * DBudgetKV with the given stop rule, sinks and full layers.
     *
     * @param stop the stop rule, from {@link #normLossStop(double, int)}
     * @param sinks leading rows always kept, {@code >= 0}
     * @param fullLayers layers kept whole (never compressed); may be empty
     * @return the policy; it takes {@link Budget#dynamic()}
     */
    static CompressionPolicy dbudgetKv(LayerBudgetRule stop, int sinks, Set<Integer> fullLayers) {
        return new CompressionPolicy("dbudgetkv", Protection.sinks(sinks), new RecencyScorer(), stop,
                new UniformHeads(), new TopKSelector(), fullLayers);
    }

    /**
     * CriticalDBudgetKV, a combination the seeds do not have: DBudgetKV decides how many rows each layer keeps (its
     * 4 sinks, newest-to-oldest ranking and norm-loss stop with T = 1%; layers 0 and 1 whole), CriticalKV decides
     * which (window-attention scores, the observation window protected, two-stage selection with alpha 0.5, eps 1e-4).
     * A layer keeps DBudgetKV's count or its protected window, whichever is larger. Takes {@link Budget#dynamic()}.
     *
     * @return the policy; it takes {@link Budget#dynamic()}
     */
    public static CompressionPolicy criticalDbudgetKv() {
        return criticalDbudgetKv(NormLossStop.paper(), DEFAULT_SINKS, WindowAttentionScorer.authors(),
                CriticalSelector.defaults());
    }

    /**
     * CriticalDBudgetKV with the given stop rule ({@link #normLossStop}), sinks, scoring and stages.
     *
     * @param stop DBudgetKV's stop rule, from {@link #normLossStop(double, int)}
     * @param sinks leading rows DBudgetKV's count always keeps, {@code >= 0}
     * @param scoring the observation-window scorer that ranks the rows within a layer
     * @param stages the selector, normally {@link #criticalSelection(double, double)}
     * @return the policy; it takes {@link Budget#dynamic()}
     */
    static CompressionPolicy criticalDbudgetKv(LayerBudgetRule stop, int sinks, Scorer scoring,
                                                      Selector stages) {
        if (!(stop instanceof NormLossStop normLoss)) {
            throw new KvArgumentException("criticalDbudgetKv needs DBudgetKV's norm-loss stop (Policies.normLossStop), "
                    + "got " + stop);
        }
        return criticalKv(scoring, stages).withName("criticaldbudgetkv")
                .withLayerRule(new DBudgetKvStop(normLoss, sinks)).withFullLayers(Set.of(0, 1));
    }

    /**
     * DBudgetKV with the given stop settings, sinks and full layers.
     *
     * @param threshold T, the largest allowed relative loss of the attention output norm, in {@code [0, 1)}
     *        (0.01 = 1%, the paper's)
     * @param lastRows how many of the newest query rows the loss is averaged over, {@code >= 1} (the paper: 1)
     * @param sinks leading rows always kept, {@code >= 0}
     * @param fullLayers layers kept whole (never compressed); may be empty
     * @return the policy; it takes {@link Budget#dynamic()}
     * @throws KvArgumentException if a setting is out of range
     */
    public static CompressionPolicy dbudgetKv(double threshold, int lastRows, int sinks, Set<Integer> fullLayers) {
        return dbudgetKv(normLossStop(threshold, lastRows), sinks, fullLayers);
    }

    /**
     * CriticalDBudgetKV with the given stop settings and DBudgetKV's sinks; its scoring and stages are changed with
     * {@link CompressionPolicy#withWindowScoring}, {@link CompressionPolicy#withScorer} and
     * {@link CompressionPolicy#withCriticalSelection}.
     *
     * @param threshold T, the largest allowed relative loss of the attention output norm, in {@code [0, 1)}
     * @param lastRows how many of the newest query rows the loss is averaged over, {@code >= 1}
     * @param sinks leading rows DBudgetKV's count always keeps, {@code >= 0}
     * @return the policy; it takes {@link Budget#dynamic()}
     * @throws KvArgumentException if a setting is out of range
     */
    public static CompressionPolicy criticalDbudgetKv(double threshold, int lastRows, int sinks) {
        return criticalDbudgetKv(normLossStop(threshold, lastRows), sinks, WindowAttentionScorer.authors(),
                CriticalSelector.defaults());
    }

    // ---------------------------------------------------------------- building blocks. The scorers are public (a
    // caller may pass one to snapKv(Scorer) etc. or write its own Scorer); the other steps are package-private and a
    // caller composes them through CompressionPolicy's with... methods (withAdaKvHeads, withPyramidLayers, ...).

    /**
     * SnapKV's observation-window score with the authors' configuration: window 32, max-pool 7, GQA mean.
     *
     * @return the scorer
     */
    public static Scorer windowAttention() {
        return WindowAttentionScorer.authors();
    }

    /**
     * kvpress's SnapKVPress scoring: window 64, avg-pool 5, pooling before the GQA mean.
     *
     * @return the scorer
     */
    public static Scorer windowAttentionKvpress() {
        return WindowAttentionScorer.kvpress();
    }

    /**
     * Observation-window scoring with the given window, pooling and (odd) kernel size, the authors' order (GQA
     * mean, then pooling).
     *
     * @param window observation-window length in query tokens, {@code >= 1}
     * @param pooling how scores are smoothed over neighbouring rows
     * @param kernel pooling kernel width in rows, odd and {@code >= 1} (1: no pooling)
     * @return the scorer
     */
    public static Scorer windowAttention(int window, WindowPooling pooling, int kernel) {
        WindowAttentionScorer a = WindowAttentionScorer.authors();
        return new WindowAttentionScorer(window, pooling, kernel, a.order(), a.groupReduce());
    }

    /**
     * The score of StreamingLLM and DBudgetKV: newer rows score higher.
     *
     * @return the scorer
     */
    public static Scorer recency() {
        return new RecencyScorer();
    }

    /**
     * Knorm's score: a smaller key L2 norm scores higher.
     *
     * @return the scorer
     */
    public static Scorer keyNorm() {
        return new KeyNormScorer();
    }

    /**
     * The same fraction of rows in every layer.
     *
     * @return the rule
     */
    static LayerBudgetRule uniformLayers() {
        return new UniformLayers();
    }

    /**
     * PyramidKV's layer budgets with steepness {@code beta} (> 0).
     *
     * @param beta steepness, {@code >= 1}
     * @return the rule
     */
    static LayerBudgetRule pyramidLayers(int beta) {
        return new PyramidLayers(beta);
    }

    /**
     * DBudgetKV's dynamic stop rule with the paper's settings (T = 1%, the last query row).
     *
     * @return the rule
     */
    static LayerBudgetRule normLossStop() {
        return NormLossStop.paper();
    }

    /**
     * DBudgetKV's stop rule with threshold {@code threshold} averaged over the last {@code lastRows} query rows.
     *
     * @param threshold T, the largest allowed relative loss of the attention output norm, in {@code [0, 1)}
     *        (0.01 = 1%)
     * @param lastRows how many of the newest query rows the loss is averaged over, {@code >= 1}
     * @return the rule
     */
    static LayerBudgetRule normLossStop(double threshold, int lastRows) {
        NormLossStop p = NormLossStop.paper();
        return new NormLossStop(threshold, lastRows, p.baseline(), p.aggregation());
    }

    /**
     * The same rows per KV head.
     *
     * @return the allocation
     */
    static HeadAllocation uniformHeads() {
        return new UniformHeads();
    }

    /**
     * Ada-KV's allocation (flattened top-k over the layer's heads) with safeguard {@code alpha} in [0, 1].
     *
     * @param alpha safeguard, the share of the budget spread uniformly over the heads, in {@code [0, 1]}
     * @return the allocation
     */
    static HeadAllocation adaKvHeads(double alpha) {
        return new AdaKvHeads(alpha);
    }

    /**
     * The highest-scoring rows of each head.
     *
     * @return the selector
     */
    static Selector topK() {
        return new TopKSelector();
    }

    /**
     * CriticalKV's two-stage selection with its defaults (alpha 0.5, eps 1e-4).
     *
     * @return the selector
     */
    static Selector criticalSelection() {
        return CriticalSelector.defaults();
    }

    /**
     * CriticalKV's two-stage selection with first-stage share {@code alpha} and floor {@code eps}.
     *
     * @param alpha share of the budget the first stage selects by score, in {@code [0, 1]}
     * @param eps added to the base score before the second stage multiplies it by the value norm, finite and
     *        {@code >= 0}
     * @return the selector
     */
    static Selector criticalSelection(double alpha, double eps) {
        return new CriticalSelector(alpha, eps);
    }

    /**
     * CriticalKV's two-stage selection with the given value norm in its second stage.
     *
     * @param alpha share of the budget the first stage selects by score, in {@code [0, 1]}
     * @param eps added to the base score before the second stage multiplies it by the value norm, finite and
     *        {@code >= 0}
     * @param norm {@link ValueNorm#L1} (the paper's) or {@link ValueNorm#L2} (from W_o's Gram matrices, 32x fewer
     *        multiply-adds at Llama-3-8B's geometry)
     * @return the selector
     * @throws KvArgumentException if alpha or eps is out of range or norm is null
     */
    static Selector criticalSelection(double alpha, double eps, ValueNorm norm) {
        return new CriticalSelector(alpha, eps, norm);
    }

    /**
     * Whether {@code rule} is the uniform layer rule (every layer the same fraction).
     *
     * @param rule any rule, not null
     * @return {@code true} if it is {@link #uniformLayers()}
     */
    static boolean isUniform(LayerBudgetRule rule) {
        return rule instanceof UniformLayers;
    }

    /**
     * Whether {@code allocation} is the uniform head allocation (every KV head the same rows).
     *
     * @param allocation any allocation, not null
     * @return {@code true} if it is {@link #uniformHeads()}
     */
    static boolean isUniform(HeadAllocation allocation) {
        return allocation instanceof UniformHeads;
    }
}
