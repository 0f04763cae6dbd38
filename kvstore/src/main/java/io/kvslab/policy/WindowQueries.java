package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * The observation window of one layer as the steps read it (a caller gives it as the window of {@link LayerInputs}):
 * the queries of the last {@code w} tokens, RoPE-rotated at their absolute positions, laid out
 * {@code [w][queryHeads][headDim]}. Query {@code i} sits at {@code positions[i]} (ascending) and attends causally to
 * the keys at positions up to its own.
 *
 * @param queries {@code float[w * queryHeads * headDim]}, the window's queries, oldest first; not copied
 * @param positions {@code long[w]}, the queries' absolute positions, strictly ascending
 */
record WindowQueries(float[] queries, long[] positions) {
    /**
     * Checks that both arrays are given, the queries split evenly into {@code positions.length} tokens, and the
     * positions ascend strictly.
     *
     * @throws KvArgumentException if an array is null, there is no query, the lengths disagree or the positions do not
     *         ascend
     */
    WindowQueries {
        if (queries == null || positions == null) {
            throw new KvArgumentException("window queries and their positions are required (got null)");
        }
        if (positions.length == 0) {
            throw new KvArgumentException("the observation window needs at least one query");
        }
        if (queries.length % positions.length != 0) {
            throw new KvArgumentException(queries.length + " query floats do not split into " + positions.length
                    + " equal tokens");
        }
        for (int i = 1; i < positions.length; i++) {
            if (positions[i] <= positions[i - 1]) {
                throw new KvArgumentException("window query positions must be strictly ascending; query " + i
                        + " has position " + positions[i] + " after " + positions[i - 1]);
            }
        }
    }

    /**
     * Number of window queries.
     *
     * @return {@code positions().length}, {@code >= 1}
     */
    int size() {
        return positions.length;
    }

    /**
     * The last {@code count} queries (all of them if fewer are held).
     *
     * @param count queries wanted, {@code >= 1}
     * @return a window of at most {@code count} queries (this one if it holds no more)
     */
    WindowQueries last(int count) {
        if (count < 1) {
            throw new KvArgumentException("a window needs at least one query, asked for " + count);
        }
        if (count >= positions.length) {
            return this;
        }
        int perToken = queries.length / positions.length;
        int from = positions.length - count;
        float[] q = java.util.Arrays.copyOfRange(queries, from * perToken, queries.length);
        long[] p = java.util.Arrays.copyOfRange(positions, from, positions.length);
        return new WindowQueries(q, p);
    }

    /**
     * Position of the first window query: rows at or after it form the observation window.
     *
     * @return {@code positions()[0]}
     */
    long start() {
        return positions[0];
    }
}
