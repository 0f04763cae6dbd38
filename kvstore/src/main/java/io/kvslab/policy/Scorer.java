package io.kvslab.policy;

/**
 * First step of a policy (kvpress's {@code score}): one fp32 importance score per row of every KV head of a layer;
 * higher means more worth keeping. Scores of protected rows are computed but never compared.
 */
public interface Scorer {
    /**
     * Scores of every row, {@code [kvHead][row]}.
     *
     * @param workspace native kernels for the heavy products (window attention)
     */
    float[][] score(LayerContext layer, PolicyWorkspace workspace);

    /** How many observation-window queries the scorer reads per layer (0 if none). */
    default int windowQueries() {
        return 0;
    }
}
