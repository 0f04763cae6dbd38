package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * A KV-cache compression policy composed like kvpress's presses: {@link Protection} (rows never evicted, as masks)
 * then a {@link Scorer} (fp32 score per row) then a layer rule (rows per head of each layer: uniform, PyramidKV's
 * pyramid or DBudgetKV's norm-loss stop) then a head allocation (uniform or Ada-KV's head-wise) then a selection
 * (top-k or CriticalKV's two stages). The scorer is the one step a caller may implement; the others are chosen and
 * parameterised with the {@code with...} methods ({@link #withPyramidLayers}, {@link #withAdaKvHeads},
 * {@link #withCriticalSelection}, ...). Unlike kvpress the result is applied by {@link Compressor}, one layer at a
 * time and all or nothing per layer, which really frees the evicted rows, head-wise budgets included.
 *
 * <p>Layers listed in {@code fullLayers} are never compressed (DBudgetKV keeps layers 0 and 1). A head whose budget
 * covers all its rows, or whose rows are all protected (a prompt no longer than the window), is kept whole. Every
 * choice is deterministic: fp32 scores, ties to the lower position.
 *
 * <p>Instances are immutable; {@code with...} methods return modified copies. See {@link Policies} for the
 * configured methods.
 */
public final class CompressionPolicy {
    private final String name;
    private final Protection protection;
    private final Scorer scorer;
    private final LayerBudgetRule layerRule;
    private final HeadAllocation headAllocation;
    private final Selector selector;
    private final Set<Integer> fullLayers;

    /**
     * A policy from its five steps (package-private: the layer rule, head allocation and selector are internal
     * types). Policies are immutable values; {@link Policies} builds the published methods, and the {@code with...}
     * methods derive variants.
     *
     * @param name           a short name for reports
     * @param protection     rows never evicted
     * @param scorer         per-row importance
     * @param layerRule      rows per head of each layer
     * @param headAllocation final per-head budgets
     * @param selector       which rows each head keeps
     * @param fullLayers     layers kept whole
     */
    CompressionPolicy(String name, Protection protection, Scorer scorer, LayerBudgetRule layerRule,
                             HeadAllocation headAllocation, Selector selector, Set<Integer> fullLayers) {
        if (name == null || name.isBlank() || protection == null || scorer == null || layerRule == null
                || headAllocation == null || selector == null || fullLayers == null) {
            throw new KvArgumentException("a policy needs a name, protection, scorer, layer rule, head allocation, "
                    + "selector and a (possibly empty) set of full layers; got a null or blank one");
        }
        for (Integer l : fullLayers) {
            if (l == null || l < 0) {
                throw new KvArgumentException("full layers must be layer indices >= 0, got " + l);
            }
        }
        this.name = name;
        this.protection = protection;
        this.scorer = scorer;
        this.layerRule = layerRule;
        this.headAllocation = headAllocation;
        this.selector = selector;
        this.fullLayers = Set.copyOf(fullLayers);
    }

    /**
     * The policy's short name.
     *
     * @return the name given at construction, e.g. {@code snapkv}
     */
    public String name() {
        return name;
    }

    /**
     * The rows this policy never evicts (sinks, recent rows, the observation window).
     *
     * @return the protection step
     */
    public Protection protection() {
        return protection;
    }

    /**
     * How this policy scores the importance of each row.
     *
     * @return the scoring step
     */
    public Scorer scorer() {
        return scorer;
    }

    /**
     * How this policy splits the budget over the layers (or, for a dynamic policy, decides each layer's count).
     *
     * @return the layer budget step
     */
    LayerBudgetRule layerRule() {
        return layerRule;
    }

    /**
     * How this policy splits a layer's budget over its KV heads.
     *
     * @return the head allocation step
     */
    HeadAllocation headAllocation() {
        return headAllocation;
    }

    /**
     * How this policy picks the rows each head keeps, given scores and budgets.
     *
     * @return the selection step
     */
    Selector selector() {
        return selector;
    }

    /**
     * Layers never compressed, ascending.
     *
     * @return an unmodifiable set of layer indices
     */
    public Set<Integer> fullLayers() {
        return new TreeSet<>(fullLayers);
    }

    /**
     * How many observation-window queries per layer the caller must provide (0: none).
     *
     * @return queries per layer, {@code >= 0}
     */
    public int windowQueries() {
        return Math.max(scorer.windowQueries(), layerRule.windowQueries());
    }

    /**
     * Whether the caller must provide each layer's W_o.
     *
     * @return {@code true} if {@link LayerInputs} must carry the layer's output projection
     */
    public boolean needsOutputProjection() {
        return selector.needsOutputProjection();
    }

    /**
     * Whether selecting reads the rows' keys or values; false (StreamingLLM: recency scores and a top-k) lets
     * {@link Compressor} read only positions, so applying the policy costs the rows that move, not the rows kept.
     *
     * @return {@code true} if selecting reads keys or values
     */
    public boolean readsRows() {
        // The uniform layer rule and head allocation read lengths only; any other rule or allocation may read rows.
        return scorer.readsRows() || selector.readsRows() || !Policies.isUniform(layerRule)
                || !Policies.isUniform(headAllocation);
    }

    /**
     * Whether the layer step decides how many rows each layer keeps by itself (DBudgetKV); such a policy takes {@link
     * Budget#dynamic()} and rejects fixed budgets.
     *
     * @return {@code true} for a dynamic-budget policy
     */
    public boolean dynamicBudget() {
        return layerRule.dynamic();
    }

    /**
     * This policy under another name (for reports).
     *
     * @param newName the new name, not blank
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withName(String newName) {
        return new CompressionPolicy(newName, protection, scorer, layerRule, headAllocation, selector, fullLayers);
    }

    /**
     * This policy with another protection step.
     *
     * @param p the protection, not null
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withProtection(Protection p) {
        return new CompressionPolicy(name, p, scorer, layerRule, headAllocation, selector, fullLayers);
    }

    /**
     * This policy with another scoring step.
     *
     * @param s the scorer, not null
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withScorer(Scorer s) {
        return new CompressionPolicy(name, protection, s, layerRule, headAllocation, selector, fullLayers);
    }

    /**
     * This policy with another layer budget step.
     *
     * @param r the layer rule, not null
     * @return a new policy, otherwise equal to this one
     */
    CompressionPolicy withLayerRule(LayerBudgetRule r) {
        return new CompressionPolicy(name, protection, scorer, r, headAllocation, selector, fullLayers);
    }

    /**
     * This policy with another head allocation step.
     *
     * @param a the head allocation, not null
     * @return a new policy, otherwise equal to this one
     */
    CompressionPolicy withHeadAllocation(HeadAllocation a) {
        return new CompressionPolicy(name, protection, scorer, layerRule, a, selector, fullLayers);
    }

    /**
     * This policy with another selection step.
     *
     * @param s the selector, not null
     * @return a new policy, otherwise equal to this one
     */
    CompressionPolicy withSelector(Selector s) {
        return new CompressionPolicy(name, protection, scorer, layerRule, headAllocation, s, fullLayers);
    }

    /**
     * This policy with Ada-KV's head-wise allocation: a layer's budget is split over its KV heads by a flattened top-k
     * of their scores, {@code alpha} of it spread uniformly first (Ada-KV's safeguard).
     *
     * @param alpha the share of each layer's budget given uniformly, in {@code [0, 1]}
     * @return a new policy, otherwise equal to this one
     * @throws KvArgumentException if {@code alpha} is out of range
     */
    public CompressionPolicy withAdaKvHeads(double alpha) {
        return withHeadAllocation(new AdaKvHeads(alpha));
    }

    /**
     * This policy with the same rows in every KV head of a layer (undoes {@link #withAdaKvHeads}).
     *
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withUniformHeads() {
        return withHeadAllocation(new UniformHeads());
    }

    /**
     * This policy with PyramidKV's layer budgets: the budget decreases linearly from the first layer to the last,
     * the total staying that of a uniform split.
     *
     * @param beta steepness, {@code >= 1} (larger: steeper)
     * @return a new policy, otherwise equal to this one
     * @throws KvArgumentException if {@code beta} is below 1
     */
    public CompressionPolicy withPyramidLayers(int beta) {
        return withLayerRule(new PyramidLayers(beta));
    }

    /**
     * This policy with the same fraction of rows in every layer (undoes {@link #withPyramidLayers}; a dynamic
     * policy becomes a fixed-budget one).
     *
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withUniformLayers() {
        return withLayerRule(new UniformLayers());
    }

    /**
     * This policy with DBudgetKV's norm-loss stop deciding each layer's row count (a dynamic policy: it then takes
     * {@link Budget#dynamic()}). A policy that already counts rows the DBudgetKV way keeps its sinks and ranking
     * ({@code criticaldbudgetkv}: DBudgetKV's count, CriticalKV's choice) and gets the new threshold.
     *
     * @param threshold T, the largest allowed relative loss of the attention output norm, in {@code [0, 1)} (0.01 =
     *         1%, the paper's)
     * @param lastRows how many of the newest query rows the loss is averaged over, {@code >= 1} (the paper: 1)
     * @return a new policy, otherwise equal to this one
     * @throws KvArgumentException if a setting is out of range
     */
    public CompressionPolicy withNormLossStop(double threshold, int lastRows) {
        NormLossStop stop = (NormLossStop) Policies.normLossStop(threshold, lastRows);
        return withLayerRule(layerRule instanceof DBudgetKvStop d ? new DBudgetKvStop(stop, d.sinks()) : stop);
    }

    /**
     * This policy keeping the highest-scoring rows of each head (undoes {@link #withCriticalSelection}).
     *
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withTopK() {
        return withSelector(new TopKSelector());
    }

    /**
     * This policy with CriticalKV's two-stage selection: a share {@code alpha} of each head's budget by score, the
     * rest by score times the row's projected value norm. Such a policy needs each layer's W_o
     * ({@link #needsOutputProjection()}).
     *
     * @param alpha share of the budget the first stage selects by score, in {@code [0, 1]} (the paper: 0.5)
     * @param eps added to the score before the second stage multiplies it by the value norm, finite and {@code >= 0}
     *         (the paper: 1e-4)
     * @param norm {@link ValueNorm#L1} (the paper's) or {@link ValueNorm#L2} (from W_o's Gram matrices)
     * @return a new policy, otherwise equal to this one
     * @throws KvArgumentException if alpha or eps is out of range or norm is null
     */
    public CompressionPolicy withCriticalSelection(double alpha, double eps, ValueNorm norm) {
        return withSelector(new CriticalSelector(alpha, eps, norm));
    }

    /**
     * Whether every layer keeps the same fraction of its rows (no PyramidKV or dynamic layer rule). With a uniform
     * head allocation too, a fixed budget gives every (layer, KV head) the same row count.
     *
     * @return {@code true} for the uniform layer rule
     */
    public boolean uniformLayers() {
        return layerRule instanceof UniformLayers;
    }

    /**
     * Whether every KV head of a layer keeps the same rows (no Ada-KV allocation).
     *
     * @return {@code true} for the uniform head allocation
     */
    public boolean uniformHeads() {
        return headAllocation instanceof UniformHeads;
    }

    /**
     * This policy with its observation-window scoring set to {@code window} queries, {@code pooling} and
     * {@code kernel} (its pooling order and GQA reduction kept); a policy that scores otherwise is returned as is.
     *
     * @param window observation-window length in query tokens, {@code >= 1}
     * @param pooling how scores are smoothed over neighbouring rows
     * @param kernel pooling kernel width in rows, odd and {@code >= 1}
     * @return the new policy, or this one if it does not score by window attention
     */
    public CompressionPolicy withWindowScoring(int window, WindowPooling pooling, int kernel) {
        if (scorer instanceof WindowAttentionScorer w) {
            return withScorer(new WindowAttentionScorer(window, pooling, kernel, w.order(), w.groupReduce()));
        }
        return this;
    }

    /**
     * This policy with another set of layers kept whole.
     *
     * @param layers layer indices never compressed; may be empty, not null
     * @return a new policy, otherwise equal to this one
     */
    public CompressionPolicy withFullLayers(Set<Integer> layers) {
        return new CompressionPolicy(name, protection, scorer, layerRule, headAllocation, selector, layers);
    }

    /**
     * Decides which rows of every (layer, KV head) to keep. Reads only {@code layers}; changes nothing. Every layer of
     * the sequence is in memory at once (evaluations that run several policies on the same rows read them once with
     * {@link LayerContext#read}); a long context should be compressed with {@link Compressor#compress(
     * io.kvslab.Sequence, CompressionPolicy, Budget, java.util.function.IntFunction)} instead, which holds one layer
     * at a time.
     *
     * @param budget     the sequence's budget: {@link Budget#dynamic()} for a dynamic policy, a fraction or token
     *                   count otherwise
     * @param compressor whose native kernels and scratch the steps use (on its thread); nothing is compressed
     * @param layers  one context per layer of the sequence, in layer order ({@code layers.get(l).layer() == l}), all
     *                of one geometry: the rows, queries and projections the steps read; copied
     * @return the rows to keep for every (layer, KV head), with the budgets that were applied
     * @throws KvArgumentException if the list is null or empty, a layer is out of place or of another geometry, or
     *         an argument is null
     */
    public Selection select(List<LayerContext> layers, Budget budget, Compressor compressor) {
        if (compressor == null) {
            throw new KvArgumentException("select needs layers, a budget and a compressor (got null)");
        }
        SequenceContext context = new SequenceContext(layers);
        return compressor.exclusive(workspace -> select(context, budget, workspace));
    }

    /** {@link #select(List, Budget, Compressor)} on a checked context and a workspace. */
    Selection select(SequenceContext context, Budget budget, PolicyWorkspace workspace) {
        if (context == null || budget == null || workspace == null) {
            throw new KvArgumentException("select needs a context, a budget and a workspace (got null)");
        }
        checkBudget(budget);
        RowCounts counts = countRows(context);
        int layers = context.layerCount();
        int[][][] kept = new int[layers][][];
        int[][] before = new int[layers][];
        for (int l = 0; l < layers; l++) {
            LayerContext layer = context.layer(l);
            before[l] = new int[layer.kvHeads()];
            for (int h = 0; h < layer.kvHeads(); h++) {
                before[l][h] = layer.head(h).length();
            }
            kept[l] = selectLayer(layer, counts, budget, workspace);
        }
        return new Selection(kept, before);
    }

    /** A dynamic policy takes only {@link Budget#dynamic()}, a fixed one only a fraction or token count. */
    void checkBudget(Budget budget) {
        if (budget == null) {
            throw new KvArgumentException(name + " needs a budget (got null)");
        }
        if (dynamicBudget() != (budget instanceof DynamicBudget)) {
            throw new KvArgumentException(dynamicBudget()
                    ? name + " sets its own budget; pass Budget.dynamic(), not " + budget
                    : name + " needs a fixed budget (Budget.fraction or Budget.tokens); Budget.dynamic() is for "
                    + "policies with a dynamic layer rule such as DBudgetKV");
        }
    }

    /** Rows and protected rows of every (layer, KV head) of an in-memory context. */
    RowCounts countRows(SequenceContext context) {
        int layers = context.layerCount();
        int[][] rows = new int[layers][];
        int[][] prot = new int[layers][];
        for (int l = 0; l < layers; l++) {
            LayerContext layer = context.layer(l);
            int heads = layer.kvHeads();
            rows[l] = new int[heads];
            prot[l] = new int[heads];
            long windowStart = fullLayers.contains(l) ? Long.MAX_VALUE
                    : protection.windowStart(layer.window(), l, scorer.windowQueries());
            for (int h = 0; h < heads; h++) {
                HeadSnapshot head = layer.head(h);
                rows[l][h] = head.length();
                prot[l][h] = fullLayers.contains(l) ? head.length()
                        : RowOrder.count(protection.mask(head.length(), head.positions(), windowStart));
            }
        }
        return new RowCounts(rows, prot);
    }

    /** First position of layer {@code layer}'s protected observation window (or Long.MAX_VALUE: none). */
    long windowStart(int layer, WindowQueries window) {
        return fullLayers.contains(layer) ? Long.MAX_VALUE
                : protection.windowStart(window, layer, scorer.windowQueries());
    }

    /**
     * The same counts read from a sequence without its keys and values: lengths, plus one (layer, KV head)'s
     * positions at a time when the observation window is protected. This is the cheap first pass of a
     * layer-at-a-time compression.
     *
     * @param windowStarts per layer, {@link #windowStart}
     */
    RowCounts countRows(io.kvslab.Sequence sequence, long[] windowStarts) {
        int layers = sequence.layout().layers();
        int heads = sequence.layout().kvHeads();
        int[][] rows = new int[layers][heads];
        int[][] prot = new int[layers][heads];
        for (int l = 0; l < layers; l++) {
            boolean full = fullLayers.contains(l);
            long windowStart = windowStarts[l];
            for (int h = 0; h < heads; h++) {
                int n = sequence.length(l, h);
                rows[l][h] = n;
                if (full) {
                    prot[l][h] = n;
                } else {
                    long[] positions = protection.observationWindow() ? sequence.positions(l, h) : null;
                    if (positions != null && positions.length != n) {
                        throw new KvArgumentException("layer " + l + " head " + h + " changed while it was being read");
                    }
                    prot[l][h] = RowOrder.count(protection.mask(n, positions, windowStart));
                }
            }
        }
        return new RowCounts(rows, prot);
    }

    /**
     * Kept rows {@code [kvHead][]} of one layer. Exactly what {@link #select} decides for this layer when
     * {@code counts} describes the whole sequence: every step reads only this layer, except the layer rule, which
     * may also read {@code counts}.
     */
    int[][] selectLayer(LayerContext layer, RowCounts counts, Budget budget, PolicyWorkspace workspace) {
        int heads = layer.kvHeads();
        if (fullLayers.contains(layer.layer()) || nothingToEvict(layer, budget)) {
            return keepAll(layer);
        }
        boolean[][] prot = protection.masks(layer, scorer.windowQueries());
        boolean allProtected = true;
        for (boolean[] m : prot) {
            allProtected &= RowOrder.count(m) == m.length;
        }
        if (allProtected) {
            return keepAll(layer); // e.g. a prompt no longer than the observation window
        }
        float[][] scores = scorer instanceof WindowAttentionScorer w ? w.score(layer, workspace) : scorer.score(layer);
        checkShape("scorer", scores, layer);
        int[] nominal = layerRule.rowsPerHead(layer, counts, budget, scores, prot, workspace);
        checkLength("layer rule", nominal, heads);
        int[] budgets = headAllocation.allocate(layer, nominal, scores, prot);
        checkLength("head allocation", budgets, heads);
        int[][] kept = selector.select(layer, scores, prot, budgets, workspace);
        checkKept(kept, prot, budgets, layer);
        return kept;
    }

    /** Uniform layer rule and a budget covering every head: skip scoring entirely. */
    private boolean nothingToEvict(LayerContext layer, Budget budget) {
        if (!(layerRule instanceof UniformLayers)) {
            return false;
        }
        for (int h = 0; h < layer.kvHeads(); h++) {
            int n = layer.head(h).length();
            if (budget.rowsFor(n) < n) {
                return false;
            }
        }
        return true;
    }

    private static int[][] keepAll(LayerContext layer) {
        int[][] kept = new int[layer.kvHeads()][];
        for (int h = 0; h < kept.length; h++) {
            kept[h] = RowOrder.indices(TopKSelector.filled(layer.head(h).length()));
        }
        return kept;
    }

    private void checkShape(String who, float[][] scores, LayerContext layer) {
        if (scores == null || scores.length != layer.kvHeads()) {
            throw new KvArgumentException(name + ": the " + who + " returned " + (scores == null ? "null" : scores.length)
                    + " score arrays for " + layer.kvHeads() + " KV heads");
        }
        for (int h = 0; h < scores.length; h++) {
            if (scores[h] == null || scores[h].length != layer.head(h).length()) {
                throw new KvArgumentException(name + ": the " + who + " returned a wrong-sized score array for layer "
                        + layer.layer() + " head " + h);
            }
        }
    }

    private void checkLength(String who, int[] a, int heads) {
        if (a == null || a.length != heads) {
            throw new KvArgumentException(name + ": the " + who + " returned " + (a == null ? "null" : a.length)
                    + " budgets for " + heads + " KV heads");
        }
    }

    /** A custom selector must keep every protected row and stay within its budget (or the protected count). */
    private void checkKept(int[][] kept, boolean[][] prot, int[] budgets, LayerContext layer) {
        if (kept == null || kept.length != prot.length) {
            throw new KvArgumentException(name + ": the selector returned the wrong number of heads");
        }
        for (int h = 0; h < kept.length; h++) {
            boolean[] in = new boolean[prot[h].length];
            for (int r : kept[h]) {
                if (r < 0 || r >= in.length) {
                    throw new KvArgumentException(name + ": the selector kept row " + r + " of layer " + layer.layer()
                            + " head " + h + ", which has " + in.length + " rows");
                }
                in[r] = true;
            }
            for (int r = 0; r < in.length; r++) {
                if (prot[h][r] && !in[r]) {
                    throw new KvArgumentException(name + ": the selector dropped protected row " + r + " of layer "
                            + layer.layer() + " head " + h);
                }
            }
            int p = RowOrder.count(prot[h]);
            if (kept[h].length > Math.max(budgets[h], p)) {
                throw new KvArgumentException(name + ": the selector kept " + kept[h].length + " rows of layer "
                        + layer.layer() + " head " + h + " over its budget " + Math.max(budgets[h], p));
            }
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
