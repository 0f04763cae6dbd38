package io.kvslab.pod;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

/**
 * What a layer grouping was calibrated on: an identifier of the model's weights (for example the file name and a
 * hash of its bytes) and its attention geometry. A grouping only applies to the model it came from.
 *
 * @param modelId    identifier of the weights; printable, one line
 * @param layers     transformer layers
 * @param queryHeads query heads per layer
 * @param kvHeads    KV heads per layer
 * @param headDim    elements per head
 */
public record ModelFingerprint(String modelId, int layers, int queryHeads, int kvHeads, int headDim) {
    /**
     * Checks the identifier (non-blank, one line) and the geometry.
     *
     * @throws KvArgumentException if the identifier is blank or spans lines, a count is below 1, or {@code queryHeads}
     *         is not a multiple of {@code kvHeads}
     */
    public ModelFingerprint {
        if (modelId == null || modelId.isBlank() || modelId.indexOf('\n') >= 0 || modelId.indexOf('\r') >= 0) {
            throw new KvArgumentException("modelId must be a non-blank single line, got "
                    + (modelId == null ? "null" : "'" + modelId + "'"));
        }
        modelId = modelId.strip();
        if (layers < 1 || queryHeads < 1 || kvHeads < 1 || headDim < 1 || queryHeads % kvHeads != 0) {
            throw new KvArgumentException("a model needs layers, queryHeads, kvHeads, headDim >= 1 and queryHeads a "
                    + "multiple of kvHeads, got " + layers + ", " + queryHeads + ", " + kvHeads + ", " + headDim);
        }
    }

    /**
     * The fingerprint of a store layout with the given model identifier.
     *
     * @param modelId identifier of the weights, non-blank, one line
     * @param layout the store layout whose geometry the fingerprint takes
     * @return the fingerprint
     */
    public static ModelFingerprint of(String modelId, KvLayout layout) {
        return new ModelFingerprint(modelId, layout.layers(), layout.queryHeads(), layout.kvHeads(),
                layout.headDim());
    }

    /**
     * Query heads per KV head.
     *
     * @return {@code queryHeads / kvHeads}
     */
    public int groupSize() {
        return queryHeads / kvHeads;
    }

    /**
     * Whether a store layout has this geometry.
     *
     * @param layout a store layout
     * @return {@code true} if layers, query heads, KV heads and head dim are equal (dtype and block size do not matter)
     */
    public boolean matches(KvLayout layout) {
        return layout.layers() == layers && layout.queryHeads() == queryHeads && layout.kvHeads() == kvHeads
                && layout.headDim() == headDim;
    }

    String describe() {
        return "'" + modelId + "' (" + layers + " layers, " + queryHeads + " query heads, " + kvHeads
                + " KV heads, head dim " + headDim + ")";
    }
}
