package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/**
 * PoD's offline layer-similarity statistic and its greedy bottom-up grouping (Algorithm 1 of arXiv 2412.02252, as
 * specified in research/algorithms.md section 3.2), with the open choices settled as follows:
 * <ul>
 *   <li>similarity = 1 - Jensen-Shannon divergence in base 2, so it lies in [0, 1] (1: identical attention
 *       distributions, 0: disjoint supports);</li>
 *   <li>computed per query head and per calibration query, averaged over queries, then averaged over the query
 *       heads of a GQA group: grouping is per KV head, since all query heads of a group read the same key;</li>
 *   <li>each layer is compared with the <em>lowest</em> layer of the group being built (the layer whose keys it
 *       would use), not with the previous layer;</li>
 *   <li>the distributions are whatever the caller passes (the calibration runner passes each query's full causal
 *       attention row, not only its distant part).</li>
 * </ul>
 * Accumulates over any number of queries; not thread-safe.
 */
public final class LayerSimilarity {
    private final int layers;
    private final int queryHeads;
    private final int kvHeads;
    /** [queryHead][l1][l2], l1 < l2: summed similarity. */
    private final double[][][] sum;
    private long queries;

    /**
     * An empty accumulator for a model geometry.
     *
     * @param layers layers of the model, {@code >= 1}
     * @param queryHeads query heads per layer, {@code >= 1}, a multiple of {@code kvHeads}
     * @param kvHeads KV heads per layer, {@code >= 1}
     * @throws KvArgumentException if a count is out of range
     */
    public LayerSimilarity(int layers, int queryHeads, int kvHeads) {
        if (layers < 1 || queryHeads < 1 || kvHeads < 1 || queryHeads % kvHeads != 0) {
            throw new KvArgumentException("need layers, queryHeads, kvHeads >= 1 and queryHeads a multiple of kvHeads, "
                    + "got " + layers + ", " + queryHeads + ", " + kvHeads);
        }
        this.layers = layers;
        this.queryHeads = queryHeads;
        this.kvHeads = kvHeads;
        this.sum = new double[queryHeads][layers][layers];
    }

    /**
     * An accumulator for a model's geometry.
     *
     * @param model the model whose geometry the accumulator takes
     * @return an empty accumulator
     */
    public static LayerSimilarity of(ModelFingerprint model) {
        return new LayerSimilarity(model.layers(), model.queryHeads(), model.kvHeads());
    }

    /**
     * Adds one query token's attention distributions.
     *
     * @param probabilities {@code [layer][queryHead][key]}: each row a probability distribution over the same keys
     *                      (same length everywhere, entries {@code >= 0}, summing to 1 within 1e-3)
     */
    public void add(double[][][] probabilities) {
        if (probabilities == null || probabilities.length != layers) {
            throw new KvArgumentException("need attention rows for each of the " + layers + " layers");
        }
        int keys = -1;
        for (int l = 0; l < layers; l++) {
            if (probabilities[l] == null || probabilities[l].length != queryHeads) {
                throw new KvArgumentException("layer " + l + " must have one attention row per query head ("
                        + queryHeads + ")");
            }
            for (int h = 0; h < queryHeads; h++) {
                double[] p = probabilities[l][h];
                if (p == null || p.length == 0 || (keys >= 0 && p.length != keys)) {
                    throw new KvArgumentException("attention rows must be non-empty and of equal length; layer " + l
                            + " head " + h + " has " + (p == null ? "none" : p.length) + (keys >= 0 ? ", expected "
                            + keys : ""));
                }
                keys = p.length;
                checkDistribution(p, l, h);
            }
        }
        for (int h = 0; h < queryHeads; h++) {
            for (int a = 0; a < layers; a++) {
                for (int b = a + 1; b < layers; b++) {
                    sum[h][a][b] += similarity(probabilities[a][h], probabilities[b][h]);
                }
            }
        }
        queries++;
    }

    private static void checkDistribution(double[] p, int l, int h) {
        double s = 0;
        for (double x : p) {
            if (!(x >= 0) || Double.isInfinite(x)) {
                throw new KvArgumentException("attention of layer " + l + " head " + h + " has an entry " + x
                        + "; probabilities must be finite and >= 0");
            }
            s += x;
        }
        if (Math.abs(s - 1) > 1e-3) {
            throw new KvArgumentException("attention of layer " + l + " head " + h + " sums to " + s
                    + "; each row must be a probability distribution");
        }
    }

    /**
     * Queries added so far.
     *
     * @return the number of calibration queries accumulated, {@code >= 0}
     */
    public long queries() {
        return queries;
    }

    /**
     * 1 - JS(p, q) with base-2 logarithms: in [0, 1], 1 iff p == q, 0 iff their supports are disjoint.
     *
     * @param p a probability distribution (non-negative, summing to 1)
     * @param q a distribution of the same length
     * @return the similarity, in {@code [0, 1]}
     */
    public static double similarity(double[] p, double[] q) {
        if (p.length != q.length) {
            throw new KvArgumentException("distributions differ in length: " + p.length + " vs " + q.length);
        }
        double js = 0;
        for (int i = 0; i < p.length; i++) {
            double m = 0.5 * (p[i] + q[i]);
            if (p[i] > 0) {
                js += 0.5 * p[i] * Math.log(p[i] / m);
            }
            if (q[i] > 0) {
                js += 0.5 * q[i] * Math.log(q[i] / m);
            }
        }
        js /= Math.log(2);
        return Math.min(1, Math.max(0, 1 - js));
    }

    /**
     * Mean similarity of layers a and b for one query head over the queries added.
     *
     * @param queryHead query head, in {@code [0, queryHeads)}
     * @param a one layer, in {@code [0, layers)}
     * @param b another layer, in {@code [0, layers)}
     * @return the mean similarity, in {@code [0, 1]}
     */
    public double queryHeadSimilarity(int queryHead, int a, int b) {
        requireData();
        if (a == b) {
            return 1;
        }
        return sum[queryHead][Math.min(a, b)][Math.max(a, b)] / queries;
    }

    /**
     * Mean over the KV head's query heads of {@link #queryHeadSimilarity}.
     *
     * @param kvHead KV head, in {@code [0, kvHeads)}
     * @param a one layer, in {@code [0, layers)}
     * @param b another layer, in {@code [0, layers)}
     * @return the mean similarity, in {@code [0, 1]}
     */
    public double kvHeadSimilarity(int kvHead, int a, int b) {
        int g = queryHeads / kvHeads;
        double s = 0;
        for (int h = kvHead * g; h < (kvHead + 1) * g; h++) {
            s += queryHeadSimilarity(h, a, b);
        }
        return s / g;
    }

    /**
     * {@code [kvHead][a][b]} mean similarities (1 on the diagonal).
     *
     * @return a new {@code [kvHeads][layers][layers]} symmetric matrix
     */
    public double[][][] kvHeadMatrix() {
        double[][][] m = new double[kvHeads][layers][layers];
        for (int k = 0; k < kvHeads; k++) {
            for (int a = 0; a < layers; a++) {
                for (int b = 0; b < layers; b++) {
                    m[k][a][b] = kvHeadSimilarity(k, a, b);
                }
            }
        }
        return m;
    }

    /**
     * Greedy bottom-up grouping of every KV head at threshold {@code delta}.
     *
     * @param delta similarity threshold, in {@code [0, 1]}: a layer joins its group while its similarity to the group's
     *         lowest layer is at least this
     * @param model the model the grouping is for (must have this accumulator's geometry)
     * @return the grouping
     */
    public LayerGrouping group(double delta, ModelFingerprint model) {
        if (model.layers() != layers || model.queryHeads() != queryHeads || model.kvHeads() != kvHeads) {
            throw new KvArgumentException("the similarities were measured for " + layers + " layers, "
                    + queryHeads + " query heads, " + kvHeads + " KV heads, not for model " + model.describe());
        }
        double[][][] m = kvHeadMatrix();
        int[][] base = new int[kvHeads][];
        for (int k = 0; k < kvHeads; k++) {
            base[k] = groupGreedy(m[k], delta);
        }
        return new LayerGrouping(model, delta, base);
    }

    /**
     * Algorithm 1 for one head: the group starts at layer 0; layer l joins it while
     * {@code sim[lowest][l] >= delta}, otherwise l starts a new group. Returns the base (lowest) layer of each layer.
     *
     * @param sim {@code [layers][layers]} similarities of one KV head
     * @param delta similarity threshold, in {@code [0, 1]}
     * @return the base layer of each layer
     */
    public static int[] groupGreedy(double[][] sim, double delta) {
        if (!(delta >= 0 && delta <= 1)) {
            throw new KvArgumentException("delta must be in [0, 1] (1 - JS similarity), got " + delta);
        }
        int n = sim.length;
        int[] base = new int[n];
        int lowest = 0;
        for (int l = 1; l < n; l++) {
            if (sim[lowest][l] < delta) {
                lowest = l;
            }
            base[l] = lowest;
        }
        return base;
    }

    private void requireData() {
        if (queries == 0) {
            throw new KvArgumentException("no calibration query added yet");
        }
    }
}
