package io.kvslab.bench.model;

/**
 * A loaded Llama-architecture model: its geometry and its weights. Immutable and safe to share between runs and
 * threads; every {@link Session} keeps its own scratch buffers and KV cache.
 */
public final class LlamaModel {
    private final ModelConfig config;
    private final ModelWeights weights;
    private final String name;
    /** Built on first use by a SIMD forward pass ({@link VectorMatMul}); guarded by this. */
    private WeightPanels panels;

    LlamaModel(ModelConfig config, ModelWeights weights, String name) {
        this.config = config;
        this.weights = weights;
        this.name = name;
    }

    /** Geometry and numerics. */
    public ModelConfig config() {
        return config;
    }

    /** Read-only access to the weights (accessors return copies). */
    public ModelWeights weights() {
        return weights;
    }

    /** The weights repacked for {@link PanelMatMul}, built on the first call. */
    synchronized WeightPanels panels() {
        if (panels == null) {
            panels = WeightPanels.of(config, weights);
        }
        return panels;
    }

    /** The file name the model came from, for reports. */
    public String name() {
        return name;
    }

    @Override
    public String toString() {
        return name + " " + config;
    }
}
