package io.kvslab.policy;

/**
 * Rows a policy must never evict, as explicit masks (never as sentinel scores: kvpress's {@code finfo.max} markers
 * can be multiplied away by a zero value norm, spec 2.9 trap 1).
 *
 * @param sinks             the first {@code sinks} rows of each head (attention sinks; positions 0..sinks-1 after
 *                          prefill)
 * @param recent            the last {@code recent} rows of each head
 * @param observationWindow the rows at or after the first observation-window query's position (SnapKV's window,
 *                          which the authors' code keeps outside the competition, spec 2.9 trap 2)
 */
public record Protection(int sinks, int recent, boolean observationWindow) {
    /**
     * Checks the counts.
     *
     * @throws PolicyException if {@code sinks} or {@code recent} is negative
     */
    public Protection {
        if (sinks < 0 || recent < 0) {
            throw new PolicyException("protected sink and recent counts must be >= 0, got " + sinks + " and "
                    + recent);
        }
    }

    /**
     * Nothing protected.
     *
     * @return the empty protection
     */
    public static Protection none() {
        return new Protection(0, 0, false);
    }

    /**
     * The first {@code sinks} rows.
     *
     * @param sinks leading rows to protect, {@code >= 0}
     * @return the protection
     */
    public static Protection sinks(int sinks) {
        return new Protection(sinks, 0, false);
    }

    /**
     * The observation window.
     *
     * @return the protection; the policy then needs observation-window queries
     */
    public static Protection window() {
        return new Protection(0, 0, true);
    }

    /**
     * The protected rows of every KV head of {@code layer}, one mask per head. {@code windowSize} is how many of the
     * layer's window queries form the observation window (0 = all of them).
     */
    boolean[][] masks(LayerContext layer, int windowSize) {
        boolean[][] masks = new boolean[layer.kvHeads()][];
        long windowStart = windowStart(layer.window(), layer.layer(), windowSize);
        for (int h = 0; h < layer.kvHeads(); h++) {
            HeadSnapshot head = layer.head(h);
            masks[h] = mask(head.length(), head.positions(), windowStart);
        }
        return masks;
    }

    /**
     * First position of the protected observation window ({@code Long.MAX_VALUE} when the window is not protected).
     *
     * @param window the layer's window queries (null fails when the window is protected)
     */
    long windowStart(WindowQueries window, int layer, int windowSize) {
        if (!observationWindow) {
            return Long.MAX_VALUE;
        }
        if (window == null) {
            throw new PolicyException("an observation-window protection needs the observation-window queries of "
                    + "layer " + layer + " (none were given)");
        }
        return (windowSize > 0 ? window.last(windowSize) : window).start();
    }

    /** The protected rows of one head with {@code n} rows at {@code positions} (read only for the window). */
    boolean[] mask(int n, long[] positions, long windowStart) {
        boolean[] m = new boolean[n];
        for (int r = 0; r < Math.min(sinks, n); r++) {
            m[r] = true;
        }
        for (int r = Math.max(0, n - recent); r < n; r++) {
            m[r] = true;
        }
        if (observationWindow) {
            for (int r = n - 1; r >= 0 && positions[r] >= windowStart; r--) {
                m[r] = true;
            }
        }
        return m;
    }
}
