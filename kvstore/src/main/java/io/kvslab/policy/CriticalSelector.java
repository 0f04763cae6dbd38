package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.internal.ffm.OutputProjectionGram;
import io.kvslab.internal.ffm.OutputProjectionWeights;
/**
 * CriticalKV's two-stage selection (arXiv 2502.03805, spec 2.2-2.4), replacing a per-head top-k.
 *
 * <p>Per KV head with budget B (protected included), p protected rows and free budget {@code f = B - p}:
 * <ol>
 *   <li>stage 1 keeps the {@code b1 = floor(alpha * f)} best unprotected rows by the base score S (window attention),
 *       which makes the retained attention mass exceed 1/2 so that the perturbation bound decreases in the stage-2
 *       score (Assumption 3.4);</li>
 *   <li>stage 2 keeps the {@code f - b1} best remaining unprotected rows by {@code (S + eps) * ||v W_o^h||_1},
 *       the L1 norm of the row's value projected through each query head's slice of W_o, averaged over the GQA group
 *       (the mean of per-head norms, not the norm of a mean; spec 2.9 trap 5); with {@link ValueNorm#L2} the L2
 *       norm instead, from W_o's per-head Gram matrices (paper Appendix C.3: nearly the same selections).</li>
 * </ol>
 * Protected rows (the window) are kept by mask, outside both stages (spec 2.9 traps 1-2). Short prompts: when
 * {@code f >= 1} and {@code alpha > 0} stage 1 keeps at least one row (kvpress #277: {@code int(n_kept * 0.5)}
 * floors to 0 and silently skips stage 1). The value norms come from the native sgemm kernel and are computed only
 * for what stage 2 ranks: heads that lose rows, and in them the rows that are neither protected nor kept by stage 1
 * (87% of the rows at a 25% budget, 75% at 50%: the norms cost as many FLOPs as the layer's output projection, so
 * those are the FLOPs saved). Each computed norm has the bits a whole-head call would give it, so the kept rows are
 * exactly those of computing every norm. With Ada-KV the budgets arrive per head, allocated on the base scores
 * (spec 2.9 trap 6).
 *
 * @param alpha first-stage fraction in [0, 1] (0.5)
 * @param eps   added to S before the product (1e-4)
 * @param norm  the value norm of stage 2 ({@link ValueNorm#L1}, the paper's)
 */
record CriticalSelector(double alpha, double eps, ValueNorm norm) implements Selector {
    /** The paper's L1 value norm. */
    CriticalSelector(double alpha, double eps) {
        this(alpha, eps, ValueNorm.L1);
    }

    public CriticalSelector {
        if (norm == null) {
            throw new KvArgumentException("CriticalKV's value norm is required (ValueNorm.L1 or L2), got null");
        }
        if (!(alpha >= 0.0 && alpha <= 1.0)) {
            throw new KvArgumentException("CriticalKV's first-stage fraction must be in [0, 1], got " + alpha);
        }
        if (!(eps >= 0.0) || Double.isInfinite(eps)) {
            throw new KvArgumentException("CriticalKV's eps must be finite and >= 0, got " + eps);
        }
    }

    /** The paper's and kvpress's defaults: alpha 0.5, eps 1e-4. */
    public static CriticalSelector defaults() {
        return new CriticalSelector(0.5, 1e-4);
    }

    @Override
    public boolean needsOutputProjection() {
        return true;
    }

    @Override
    public int[][] select(LayerContext layer, float[][] scores, boolean[][] protectedRows, int[] budgets,
                          PolicyWorkspace workspace) {
        OutputProjection wo = layer.requireOutputProjection("CriticalKV");
        int[][] kept = new int[layer.kvHeads()][];
        OutputProjectionWeights weights = null;   // L1: uploaded on the first head that needs norms, closed below
        OutputProjectionGram gram = null;         // L2: cached by the workspace per W_o array
        try {
            for (int h = 0; h < kept.length; h++) {
                HeadSnapshot head = layer.head(h);
                if (budgets[h] >= head.length()) {
                    kept[h] = RowOrder.indices(TopKSelector.filled(head.length()));
                    continue;
                }
                Stages st = stageOne(scores[h], protectedRows[h], budgets[h], alpha);
                float[] norms = null;
                if (st.needsNorms()) {
                    int[] rows = RowOrder.indices(st.candidates);
                    float[] some;
                    if (norm == ValueNorm.L2) {
                        if (gram == null) {
                            gram = workspace.gram(wo, layer.queryHeads(), layer.headDim());
                        }
                        some = groupValueL2Norms(head, rows, gram, h, layer.groupSize(), workspace);
                    } else {
                        if (weights == null) {
                            weights = workspace.kernels().uploadOutputProjection(wo.weights(), wo.modelDim(),
                                    layer.queryHeads(), layer.headDim());
                        }
                        some = groupValueNorms(head, rows, weights, h, layer.groupSize(), workspace);
                    }
                    norms = new float[head.length()];   // rows outside the candidates are never read
                    for (int i = 0; i < rows.length; i++) {
                        norms[rows[i]] = some[i];
                    }
                }
                kept[h] = stageTwo(st, scores[h], norms, protectedRows[h], eps);
            }
        } finally {
            if (weights != null) {
                weights.close();
            }
        }
        return kept;
    }

    /**
     * Stage 1's outcome for one head: the rows it keeps, the rows stage 2 ranks ({@code candidates}: neither
     * protected nor kept by stage 1) and how many of them stage 2 keeps ({@code k2}).
     */
    private record Stages(boolean[] stage1, boolean[] candidates, int candidateCount, int k2) {
        /**
         * Whether any row needs a norm: the candidates do (even when stage 2 keeps none or all of them, its top-k
         * still checks their scores for NaN, as before); the protected rows and stage 1's rows never do.
         */
        boolean needsNorms() {
            return candidateCount > 0;
        }
    }

    private static Stages stageOne(float[] scores, boolean[] prot, int budget, double alpha) {
        int n = prot.length;
        int p = RowOrder.count(prot);
        int free = Math.max(0, budget - p);
        int b1 = firstStage(free, alpha);
        boolean[] candidates = new boolean[n];
        for (int r = 0; r < n; r++) {
            candidates[r] = !prot[r];
        }
        boolean[] stage1 = RowOrder.topMask(scores, candidates, b1);
        int count = 0;
        for (int r = 0; r < n; r++) {
            candidates[r] = !prot[r] && !stage1[r];
            if (candidates[r]) {
                count++;
            }
        }
        return new Stages(stage1, candidates, count, free - b1);
    }

    /** Stage 2 and the union; {@code norms} is read only at candidate rows (null when there are none). */
    private static int[] stageTwo(Stages st, float[] scores, float[] norms, boolean[] prot, double eps) {
        int n = prot.length;
        boolean[] stage2 = new boolean[n];
        if (st.needsNorms()) {
            float[] s2 = new float[n];
            for (int r = 0; r < n; r++) {
                if (st.candidates[r]) {
                    s2[r] = (float) ((scores[r] + eps) * norms[r]);
                }
            }
            stage2 = RowOrder.topMask(s2, st.candidates, st.k2);
        }
        boolean[] keep = new boolean[n];
        for (int r = 0; r < n; r++) {
            keep[r] = prot[r] || st.stage1[r] || stage2[r];
        }
        return RowOrder.indices(keep);
    }

    /** Mean over the group's query heads of {@code ||v W_o^h||_1} for every row of KV head {@code kvHead}. */
    static float[] groupValueNorms(HeadSnapshot head, OutputProjectionWeights weights, int kvHead, int group,
                                   PolicyWorkspace workspace) {
        int n = head.length();
        float[] perHead = new float[group * n];
        workspace.kernels().valueNorms(head.values(), n, weights, kvHead * group, group, perHead);
        return groupMean(perHead, n, group);
    }

    /** Mean over the group's query heads of {@code ||v W_o^h||_2} for every row of KV head {@code kvHead}. */
    static float[] groupValueL2Norms(HeadSnapshot head, OutputProjectionGram gram, int kvHead, int group,
                                     PolicyWorkspace workspace) {
        int n = head.length();
        float[] perHead = new float[group * n];
        workspace.kernels().valueL2Norms(head.values(), n, gram, kvHead * group, group, perHead);
        return groupMean(perHead, n, group);
    }

    /**
     * {@link #groupValueNorms(HeadSnapshot, OutputProjectionWeights, int, int, PolicyWorkspace)} for the given rows
     * only ({@code rows} ascending; entry {@code i} is row {@code rows[i]}'s), with the bits the whole-head call
     * gives them (the kernel packs the rows so that OpenBLAS rounds each as in the whole product; see
     * {@code PolicyKernels}).
     */
    static float[] groupValueNorms(HeadSnapshot head, int[] rows, OutputProjectionWeights weights, int kvHead,
                                   int group, PolicyWorkspace workspace) {
        float[] perHead = new float[group * rows.length];
        workspace.kernels().valueNorms(head.values(), head.length(), rows, weights, kvHead * group, group, perHead);
        return groupMean(perHead, rows.length, group);
    }

    /** The L2 counterpart of {@link #groupValueNorms(HeadSnapshot, int[], OutputProjectionWeights, int, int, PolicyWorkspace)}. */
    static float[] groupValueL2Norms(HeadSnapshot head, int[] rows, OutputProjectionGram gram, int kvHead, int group,
                                     PolicyWorkspace workspace) {
        float[] perHead = new float[group * rows.length];
        workspace.kernels().valueL2Norms(head.values(), head.length(), rows, gram, kvHead * group, group, perHead);
        return groupMean(perHead, rows.length, group);
    }

    /** {@code mean[r] = (sum_q perHead[q][r]) / group}, summed in double over q in order. */
    private static float[] groupMean(float[] perHead, int n, int group) {
        float[] mean = new float[n];
        for (int r = 0; r < n; r++) {
            double s = 0;
            for (int q = 0; q < group; q++) {
                s += perHead[q * n + r];
            }
            mean[r] = (float) (s / group);
        }
        return mean;
    }

    /**
     * One head's two stages from every row's norm (the hand-computed and bound tests' entry); returns the kept rows,
     * ascending. The same stages as {@link #select}, which computes norms only for stage 2's candidates.
     */
    static int[] selectHead(float[] scores, float[] norms, boolean[] prot, int budget, double alpha, double eps) {
        if (budget >= prot.length) {
            return RowOrder.indices(TopKSelector.filled(prot.length));
        }
        return stageTwo(stageOne(scores, prot, budget, alpha), scores, norms, prot, eps);
    }

    /** Stage-1 size for a free budget: floor(alpha * free), at least 1 when free >= 1 and alpha > 0. */
    static int firstStage(int free, double alpha) {
        int b1 = (int) Math.floor(alpha * free);
        if (free >= 1 && alpha > 0 && b1 == 0) {
            b1 = 1;
        }
        return b1;
    }
}
