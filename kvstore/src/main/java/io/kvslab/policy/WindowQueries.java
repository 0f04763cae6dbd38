package io.kvslab.policy;

/**
 * The observation window of one layer: the queries of the last {@code w} tokens, RoPE-rotated at their absolute
 * positions, laid out {@code [w][queryHeads][headDim]}. Query {@code i} sits at {@code positions[i]} (ascending)
 * and attends causally to the keys at positions up to its own.
 *
 * <p>After prefill these are the last {@code w} prompt tokens' queries; for decoding-time compression they are the
 * last {@code w} generated tokens' queries (see {@link RecentQueries}).
 */
public record WindowQueries(float[] queries, long[] positions) {
    public WindowQueries {
        if (queries == null || positions == null) {
            throw new PolicyException("window queries and their positions are required (got null)");
        }
        if (positions.length == 0) {
            throw new PolicyException("the observation window needs at least one query");
        }
        if (queries.length % positions.length != 0) {
            throw new PolicyException(queries.length + " query floats do not split into " + positions.length
                    + " equal tokens");
        }
        for (int i = 1; i < positions.length; i++) {
            if (positions[i] <= positions[i - 1]) {
                throw new PolicyException("window query positions must be strictly ascending; query " + i
                        + " has position " + positions[i] + " after " + positions[i - 1]);
            }
        }
    }

    /** Number of window queries. */
    public int size() {
        return positions.length;
    }

    /** The last {@code count} queries (all of them if fewer are held). */
    public WindowQueries last(int count) {
        if (count < 1) {
            throw new PolicyException("a window needs at least one query, asked for " + count);
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

    /** Position of the first window query: rows at or after it form the observation window. */
    public long start() {
        return positions[0];
    }
}
