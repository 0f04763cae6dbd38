package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import java.util.Arrays;

/**
 * Deterministic top-k over one head's rows: higher score first, ties broken by the lower row index, which is the
 * lower absolute position because rows are kept in position order. Scores are fp32; NaN is rejected (it would make
 * the order meaningless), and -0.0 ties with 0.0.
 */
final class RowOrder {
    private RowOrder() {
    }

    /**
     * The indices of the eligible rows ordered best first.
     *
     * @param scores   one score per row
     * @param eligible which rows compete (null = all)
     */
    static int[] ranked(float[] scores, boolean[] eligible) {
        int count = 0;
        for (int r = 0; r < scores.length; r++) {
            if (eligible == null || eligible[r]) {
                count++;
            }
        }
        long[] keys = new long[count];
        int i = 0;
        for (int r = 0; r < scores.length; r++) {
            if (eligible == null || eligible[r]) {
                float s = scores[r];
                if (Float.isNaN(s)) {
                    throw new KvArgumentException("score of row " + r + " is NaN; the inputs (keys, values, queries) "
                            + "must be finite");
                }
                // high 32 bits: a signed int that falls as the score rises; low 32 bits: the row index.
                keys[i++] = ((long) ~sortable(s) << 32) | r;
            }
        }
        Arrays.sort(keys);
        int[] rows = new int[count];
        for (int k = 0; k < count; k++) {
            rows[k] = (int) keys[k];
        }
        return rows;
    }

    /** The best {@code k} eligible rows (all eligible rows if fewer), as a membership mask. */
    static boolean[] topMask(float[] scores, boolean[] eligible, int k) {
        boolean[] mask = new boolean[scores.length];
        int[] ranked = ranked(scores, eligible);
        for (int i = 0; i < Math.min(k, ranked.length); i++) {
            mask[ranked[i]] = true;
        }
        return mask;
    }

    /** Monotone map of a float (not NaN) to a signed int: a &lt; b implies sortable(a) &lt; sortable(b). */
    static int sortable(float f) {
        int bits = Float.floatToIntBits(f + 0.0f); // + 0.0f turns -0.0 into 0.0
        return bits ^ ((bits >> 31) & 0x7fffffff);
    }

    /** Indices of the set entries of {@code mask}, ascending. */
    static int[] indices(boolean[] mask) {
        int n = 0;
        for (boolean b : mask) {
            if (b) {
                n++;
            }
        }
        int[] out = new int[n];
        int i = 0;
        for (int r = 0; r < mask.length; r++) {
            if (mask[r]) {
                out[i++] = r;
            }
        }
        return out;
    }

    static int count(boolean[] mask) {
        int n = 0;
        for (boolean b : mask) {
            if (b) {
                n++;
            }
        }
        return n;
    }
}
