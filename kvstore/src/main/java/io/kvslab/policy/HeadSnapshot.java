package io.kvslab.policy;

import io.kvslab.Sequence;

/**
 * The cached rows of one (layer, KV head) of one sequence, as fp32: what {@code Sequence.readKeys},
 * {@code readValues} and {@code positions} return. Row {@code r} is {@code keys[r*headDim .. (r+1)*headDim)}; rows
 * are in ascending absolute position. Keys are RoPE-rotated at their absolute positions.
 *
 * <p>The arrays are not copied (they can be large); do not change them while a policy reads them. A
 * positions-only snapshot ({@link #positionsOnly}) has empty keys and values.
 *
 * @param keys {@code float[length * headDim]}, RoPE-rotated keys row after row (empty for a positions-only snapshot)
 * @param values {@code float[length * headDim]}, values row after row (empty for a positions-only snapshot)
 * @param positions {@code long[length]}, ascending absolute positions
 * @param headDim elements per row, {@code >= 1}
 */
public record HeadSnapshot(float[] keys, float[] values, long[] positions, int headDim) {
    /**
     * Checks the arrays against each other and the positions' order.
     *
     * @throws PolicyException if an array is null, {@code headDim < 1}, the lengths disagree, or positions are negative
     *         or not strictly ascending
     */
    public HeadSnapshot {
        if (keys == null || values == null || positions == null) {
            throw new PolicyException("keys, values and positions are required (got null)");
        }
        if (headDim < 1) {
            throw new PolicyException("headDim must be >= 1, got " + headDim);
        }
        long need = (long) positions.length * headDim;
        boolean positionsOnly = keys.length == 0 && values.length == 0;
        if (!positionsOnly && (keys.length != need || values.length != need)) {
            throw new PolicyException("a head with " + positions.length + " rows of " + headDim
                    + " elements needs keys and values of " + need + " floats; got " + keys.length + " and "
                    + values.length);
        }
        for (int i = 1; i < positions.length; i++) {
            if (positions[i] <= positions[i - 1]) {
                throw new PolicyException("row positions must be strictly ascending; row " + i + " has position "
                        + positions[i] + " after " + positions[i - 1]);
            }
        }
        if (positions.length > 0 && positions[0] < 0) {
            throw new PolicyException("positions must be >= 0, got " + positions[0]);
        }
    }

    /**
     * Reads one (layer, KV head) of a sequence: dequantized keys and values and the rows' positions.
     *
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @param kvHead KV head index, in {@code [0, kvHeads)}
     * @return a new snapshot (its arrays are fresh copies)
     */
    public static HeadSnapshot read(Sequence sequence, int layer, int kvHead) {
        int d = sequence.layout().headDim();
        long[] positions = sequence.positions(layer, kvHead);
        float[] keys = new float[Math.multiplyExact(positions.length, d)];
        float[] values = new float[keys.length];
        sequence.readKeys(layer, kvHead, keys);
        sequence.readValues(layer, kvHead, values);
        return new HeadSnapshot(keys, values, positions, d);
    }

    /**
     * Reads only the positions of one (layer, KV head): keys and values are empty arrays. {@link Compressor} reads
     * this for a policy that reads no rows ({@link CompressionPolicy#readsRows()}).
     *
     * @param sequence an open sequence
     * @param layer layer index, in {@code [0, layers)}
     * @param kvHead KV head index, in {@code [0, kvHeads)}
     * @return a new positions-only snapshot
     */
    public static HeadSnapshot positionsOnly(Sequence sequence, int layer, int kvHead) {
        return new HeadSnapshot(new float[0], new float[0], sequence.positions(layer, kvHead),
                sequence.layout().headDim());
    }

    /**
     * Whether keys and values were read (false for {@link #positionsOnly}).
     *
     * @return {@code true} if keys and values were read
     */
    public boolean hasRows() {
        return keys.length != 0 || positions.length == 0;
    }

    /**
     * Number of rows.
     *
     * @return the row count, {@code positions().length}
     */
    public int length() {
        return positions.length;
    }
}
