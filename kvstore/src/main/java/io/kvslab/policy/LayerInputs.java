package io.kvslab.policy;

import java.util.List;
import java.util.function.IntFunction;

/**
 * What a policy needs per layer besides the cached rows: the observation-window queries (SnapKV family, DBudgetKV)
 * and W_o (CriticalKV). {@link Compressor} asks for layer {@code l}'s inputs twice: in its first pass (that they
 * are there, and where the window starts) and when it compresses layer {@code l}; so a caller can produce them
 * lazily, and should cache them if that is expensive. A function returning null means "not available"; a policy
 * that needs it then fails with a {@link PolicyException} before any layer changes.
 *
 * @param windows           layer to window queries, or null when none are available
 * @param outputProjections layer to W_o, or null when none are available
 */
public record LayerInputs(IntFunction<WindowQueries> windows, IntFunction<OutputProjection> outputProjections) {
    private static final LayerInputs NONE = new LayerInputs(null, null);

    /**
     * No inputs: enough for StreamingLLM and Knorm.
     *
     * @return inputs that hold nothing
     */
    public static LayerInputs none() {
        return NONE;
    }

    /**
     * Window queries per layer only.
     *
     * @param windows gives each layer's window (or null), called once per layer as the compressor reaches it
     * @return the inputs
     */
    public static LayerInputs windows(IntFunction<WindowQueries> windows) {
        return new LayerInputs(windows, null);
    }

    /**
     * Per-layer lists (null lists or null entries: not available).
     *
     * @param windows one window per layer, or {@code null}
     * @param outputProjections one W_o per layer, or {@code null}
     * @return the inputs
     */
    public static LayerInputs of(List<WindowQueries> windows, List<OutputProjection> outputProjections) {
        return new LayerInputs(windows == null ? null : l -> l < windows.size() ? windows.get(l) : null,
                outputProjections == null ? null
                        : l -> l < outputProjections.size() ? outputProjections.get(l) : null);
    }

    /**
     * Layer {@code layer}'s window, or null.
     *
     * @param layer layer index
     * @return the window, or {@code null} if not available
     */
    public WindowQueries window(int layer) {
        return windows == null ? null : windows.apply(layer);
    }

    /**
     * Layer {@code layer}'s W_o, or null.
     *
     * @param layer layer index
     * @return the projection, or {@code null} if not available
     */
    public OutputProjection outputProjection(int layer) {
        return outputProjections == null ? null : outputProjections.apply(layer);
    }
}
