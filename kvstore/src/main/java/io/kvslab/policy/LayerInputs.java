package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * What a policy needs of one layer besides the cached rows: the observation-window queries (SnapKV family,
 * DBudgetKV) and W_o (CriticalKV). {@link Compressor} takes a function from layer to inputs and asks for layer
 * {@code l}'s inputs twice: in its first pass (that they are there, and where the window starts) and when it
 * compresses layer {@code l}; so a caller can produce them lazily, and should cache them if that is expensive. A
 * function returning null, or a null component, means "not available"; a policy that needs it then fails with a
 * {@link KvArgumentException} before any layer changes.
 *
 * <p>The window: the queries of the last {@code w} tokens, RoPE-rotated at their absolute positions, laid out
 * {@code [w][queryHeads][headDim]}; query {@code i} sits at {@code windowPositions[i]} (ascending) and attends causally
 * to the keys at positions up to its own. After prefill these are the last {@code w} prompt tokens' queries; for
 * decoding-time compression they are the last {@code w} generated tokens' queries (see {@link RecentQueries}).
 *
 * <p>W_o as llama2.c stores it: {@code [modelDim][queryHeads * headDim]} row-major, {@code out = W_o x}; query head
 * {@code h}'s slice is columns {@code h*headDim .. (h+1)*headDim - 1}. Its model dimension follows from its length
 * ({@link LayerContext} checks that the length is a multiple of {@code queryHeads * headDim}).
 *
 * @param windowQueries    {@code float[w * queryHeads * headDim]}, the window's queries, oldest first, or null when
 *                         none are available; not copied
 * @param windowPositions  {@code long[w]}, the queries' absolute positions, strictly ascending; null exactly when
 *                         {@code windowQueries} is
 * @param outputProjection {@code float[modelDim * queryHeads * headDim]}, the layer's W_o, or null when none is
 *                         available; not copied
 */
public record LayerInputs(float[] windowQueries, long[] windowPositions, float[] outputProjection) {
    private static final LayerInputs NONE = new LayerInputs(null, null, null);

    /**
     * Checks that the window's queries and positions are given together, the queries split evenly into
     * {@code windowPositions.length} tokens, and the positions ascend strictly; and that W_o is not empty.
     *
     * @throws KvArgumentException if only one of the window's arrays is given, the window holds no query, the lengths
     *         disagree, the positions do not ascend, or W_o is empty
     */
    public LayerInputs {
        if ((windowQueries == null) != (windowPositions == null)) {
            throw new KvArgumentException("window queries and their positions are required together (got "
                    + (windowQueries == null ? "positions without queries" : "queries without positions") + ")");
        }
        if (windowQueries != null) {
            new WindowQueries(windowQueries, windowPositions); // its checks
        }
        if (outputProjection != null && outputProjection.length == 0) {
            throw new KvArgumentException("W_o must hold at least one row (got an empty array)");
        }
    }

    /**
     * No inputs: enough for StreamingLLM and Knorm.
     *
     * @return inputs that hold nothing
     */
    public static LayerInputs none() {
        return NONE;
    }

    /**
     * The observation window only.
     *
     * @param queries   {@code float[w * queryHeads * headDim]}, the window's queries, oldest first; not copied
     * @param positions {@code long[w]}, their absolute positions, strictly ascending
     * @return the inputs
     */
    public static LayerInputs window(float[] queries, long[] positions) {
        return new LayerInputs(queries, positions, null);
    }

    /**
     * These inputs with W_o.
     *
     * @param outputProjection the layer's W_o, or null
     * @return new inputs with this window and that W_o
     */
    public LayerInputs withOutputProjection(float[] outputProjection) {
        return new LayerInputs(windowQueries, windowPositions, outputProjection);
    }

    /** The window as the steps read it, or null. */
    WindowQueries window() {
        return windowQueries == null ? null : new WindowQueries(windowQueries, windowPositions);
    }
}
