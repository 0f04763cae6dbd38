package io.kvslab.pod;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;

/**
 * Applies a {@link LayerGrouping} to a sequence as decoding moves on (PoD demotion), and builds the v1 queries.
 *
 * <p><b>Block granularity.</b> The store shares whole K blocks: a block of a non-base layer becomes an alias of the
 * base layer's block once <em>all</em> its rows are distant for the current query (positions in
 * {@code [n_s, t - n_r]}). A block holding any proximal row keeps the layer's own keys, so the proximal set is
 * rounded outward to block boundaries: each (layer, KV head) keeps own keys for at most {@code tokensPerBlock - 1}
 * more leading rows and {@code tokensPerBlock - 1} more recent rows than n_s + n_r (conservative: closer to dense
 * attention, slightly less memory saved).
 *
 * <p>Immutable and thread-safe; the sequences it works on follow the store's one-writer rule.
 */
public final class PodSharing {
    private final LayerGrouping grouping;
    private final PodConfig config;

    /**
     * PoD sharing of one model for stores of one layout.
     *
     * @param grouping the model's calibrated layer grouping
     * @param config sinks, recent window and variant
     * @param layout the layout of the stores the sharing will be used with
     * @throws KvArgumentException if an argument is null or the grouping's geometry is not the layout's
     */
    public PodSharing(LayerGrouping grouping, PodConfig config, KvLayout layout) {
        if (grouping == null || config == null || layout == null) {
            throw new KvArgumentException("PodSharing needs a grouping, a config and a layout (got null)");
        }
        grouping.requireMatches(layout);
        this.grouping = grouping;
        this.config = config;
    }

    /**
     * The layer grouping this sharing applies.
     *
     * @return the grouping given at construction
     */
    public LayerGrouping grouping() {
        return grouping;
    }

    /**
     * The PoD settings (sinks, recent window, variant) this sharing applies.
     *
     * @return the configuration given at construction
     */
    public PodConfig config() {
        return config;
    }

    /**
     * Demotes, in every KV head whose base layer for {@code layer} is lower, the K blocks that became wholly distant
     * for a query at {@code queryPosition}. Base layers are untouched. Call it after {@code layer}'s rows for the
     * query's token are appended and before its attention.
     *
     * @param sequence an open sequence of a store with this sharing's layout
     * @param layer layer index, in {@code [0, layers)}
     * @param queryPosition position of the query about to attend, {@code >= 0}
     * @return K blocks newly aliased (own copies released)
     */
    public int demote(Sequence sequence, int layer, long queryPosition) {
        int freed = 0;
        for (int h = 0; h < grouping.kvHeads(); h++) {
            int base = grouping.baseLayer(h, layer);
            if (base != layer) {
                freed += sequence.shareDistantKeys(layer, h, base, config.sinks(), config.recent(), queryPosition);
            }
        }
        return freed;
    }

    /**
     * {@link #demote} for every layer.
     *
     * @param sequence an open sequence of a store with this sharing's layout
     * @param queryPosition position of the query about to attend, {@code >= 0}
     * @return K blocks newly aliased over all layers
     */
    public int demoteAll(Sequence sequence, long queryPosition) {
        int freed = 0;
        for (int l = 0; l < grouping.layers(); l++) {
            freed += demote(sequence, l, queryPosition);
        }
        return freed;
    }

    /**
     * The queries that score the distant (aliased) blocks of {@code layer}: for v2 the layer's own; for v1, per KV
     * head h, the query heads of h taken from the base layer {@code base(layer, h)} (its scores are reused).
     *
     * @param layerQueries {@code [layer][queryHeads * headDim]}: this token's queries of every layer up to
     *                     {@code layer} (base layers are lower, so already computed)
     * @param out          {@code queryHeads * headDim}, written
     * @param layer layer index, in {@code [0, layers)}
     */
    public void distantQueries(int layer, float[][] layerQueries, float[] out) {
        ModelFingerprint m = grouping.model();
        int dim = m.headDim();
        int g = m.groupSize();
        int width = m.queryHeads() * dim;
        if (layerQueries == null || layerQueries.length <= layer || out == null || out.length != width) {
            throw new KvArgumentException("need the queries of layers 0.." + layer + " and an output of "
                    + width + " floats");
        }
        for (int h = 0; h < m.kvHeads(); h++) {
            int src = config.variant() == PodVariant.V1_SHARED_SCORES ? grouping.baseLayer(h, layer) : layer;
            float[] q = layerQueries[src];
            if (q == null || q.length < width) {
                throw new KvArgumentException("queries of layer " + src + " are missing or shorter than " + width);
            }
            System.arraycopy(q, h * g * dim, out, h * g * dim, g * dim);
        }
    }

    /**
     * PoD + eviction: makes a per-(layer, KV head) row selection consistent with the grouping by giving every layer
     * its base layer's selection (same KV head), so that the layers of a group keep the same positions and their
     * distant blocks can still be shared. Requires, as right after a prefill, that the layers of a group hold the
     * same rows; the result can be passed to {@code Sequence.retain} table by table.
     *
     * @param kept {@code [layer][kvHead][]} ascending row indices (not modified)
     * @return a new array; base layers' selections are shared, not copied
     */
    public int[][][] groupConsistent(int[][][] kept) {
        if (kept == null || kept.length != grouping.layers()) {
            throw new KvArgumentException("need a selection for each of the " + grouping.layers() + " layers");
        }
        int[][][] out = new int[kept.length][][];
        for (int l = 0; l < kept.length; l++) {
            if (kept[l] == null || kept[l].length != grouping.kvHeads()) {
                throw new KvArgumentException("layer " + l + " needs a selection for each of the "
                        + grouping.kvHeads() + " KV heads");
            }
            out[l] = new int[kept[l].length][];
            for (int h = 0; h < kept[l].length; h++) {
                out[l][h] = kept[grouping.baseLayer(h, l)][h];
            }
        }
        return out;
    }
}
