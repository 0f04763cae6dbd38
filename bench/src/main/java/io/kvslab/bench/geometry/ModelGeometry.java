package io.kvslab.bench.geometry;

import io.kvslab.DType;
import io.kvslab.KvLayout;

import java.util.List;
import java.util.Locale;

/**
 * The attention geometry of a model, all the KV cache depends on.
 *
 * @param name       display name
 * @param layers     transformer layers
 * @param queryHeads attention heads per layer
 * @param kvHeads    key/value heads per layer (GQA)
 * @param headDim    elements per head
 */
public record ModelGeometry(String name, int layers, int queryHeads, int kvHeads, int headDim) {
    /** Published configurations (config.json of each model). */
    public static final List<ModelGeometry> PRESETS = List.of(
            new ModelGeometry("Llama-3.1-8B", 32, 32, 8, 128),
            new ModelGeometry("Llama-3.1-70B", 80, 64, 8, 128),
            new ModelGeometry("Mistral-7B", 32, 32, 8, 128),
            new ModelGeometry("Qwen2.5-7B", 28, 28, 4, 128),
            new ModelGeometry("stories260K", 5, 8, 4, 8));

    public ModelGeometry {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("a model geometry needs a name");
        }
        if (layers < 1 || queryHeads < 1 || kvHeads < 1 || headDim < 1 || queryHeads % kvHeads != 0) {
            throw new IllegalArgumentException("model " + name + ": layers, heads, KV heads and head dim must be "
                    + ">= 1 and heads a multiple of KV heads; got " + layers + ", " + queryHeads + ", " + kvHeads
                    + ", " + headDim);
        }
    }

    /**
     * A preset by name (case-insensitive, e.g. {@code llama-3.1-8b}) or a custom geometry written
     * {@code layers:heads:kvHeads:headDim} (e.g. {@code 32:32:8:128}).
     */
    public static ModelGeometry parse(String spec) {
        String s = spec.trim();
        for (ModelGeometry g : PRESETS) {
            if (g.name.equalsIgnoreCase(s)) {
                return g;
            }
        }
        String[] parts = s.split(":");
        if (parts.length == 4) {
            try {
                int[] v = new int[4];
                for (int i = 0; i < 4; i++) {
                    v[i] = Integer.parseInt(parts[i].trim());
                }
                return new ModelGeometry("custom-" + v[0] + "x" + v[1] + "x" + v[2] + "x" + v[3], v[0], v[1], v[2],
                        v[3]);
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("unknown model '" + spec + "': use one of " + presetNames()
                + " or layers:heads:kvHeads:headDim (e.g. 32:32:8:128)");
    }

    public static String presetNames() {
        return String.join(", ", PRESETS.stream().map(ModelGeometry::name).map(n -> n.toLowerCase(Locale.ROOT))
                .toList());
    }

    /** This geometry with another number of layers (a layer subset for quicker stress runs). */
    public ModelGeometry withLayers(int n) {
        return new ModelGeometry(n == layers ? name : name + "[" + n + " layers]", n, queryHeads, kvHeads, headDim);
    }

    public KvLayout layout(DType dtype, int tokensPerBlock) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, dtype, tokensPerBlock);
    }

    /** Dense K+V bytes of one token: 2 x layers x kvHeads x bytes per row of the dtype. */
    public long bytesPerToken(DType dtype) {
        return 2L * layers * kvHeads * dtype.rowBytes(headDim);
    }
}
