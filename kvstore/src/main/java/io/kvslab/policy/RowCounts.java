package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/**
 * The cross-layer view a layer budget rule may use: for every (layer, KV head) of the sequence, its rows and its
 * protected rows before compression. Cheap to obtain (lengths, plus positions when the observation window is
 * protected), so {@link Compressor} gathers it in a first pass before reading any layer's keys and values; that is
 * what keeps PyramidKV's cross-layer budget exact when layers are compressed one at a time. A layer kept whole
 * ({@link CompressionPolicy#fullLayers()}) counts all its rows as protected.
 *
 * @param rows          {@code [layer][kvHead]} rows
 * @param protectedRows {@code [layer][kvHead]} protected rows, each in {@code [0, rows]}
 */
record RowCounts(int[][] rows, int[][] protectedRows) {
    /**
     * Checks the shapes and that each protected count lies in {@code [0, rows]}.
     *
     * @throws KvArgumentException if the arrays are null, empty, of different shapes or a count is out of range
     */
    public RowCounts {
        if (rows == null || protectedRows == null || rows.length == 0 || rows.length != protectedRows.length) {
            throw new KvArgumentException("row counts need the same number (>= 1) of layers for rows and protected rows");
        }
        for (int l = 0; l < rows.length; l++) {
            if (rows[l] == null || protectedRows[l] == null || rows[l].length != protectedRows[l].length) {
                throw new KvArgumentException("layer " + l + " needs one row and one protected count per KV head");
            }
            for (int h = 0; h < rows[l].length; h++) {
                if (rows[l][h] < 0 || protectedRows[l][h] < 0 || protectedRows[l][h] > rows[l][h]) {
                    throw new KvArgumentException("layer " + l + " head " + h + ": protected rows " + protectedRows[l][h]
                            + " must be in [0, rows = " + rows[l][h] + "]");
                }
            }
        }
    }

    /**
     * Number of layers.
     *
     * @return the layer count, {@code >= 1}
     */
    public int layers() {
        return rows.length;
    }

    /**
     * Rows of (layer, kvHead).
     *
     * @param layer layer index, in {@code [0, layers())}
     * @param kvHead KV head index
     * @return the row count
     */
    public int rows(int layer, int kvHead) {
        return rows[layer][kvHead];
    }

    /**
     * Protected rows of (layer, kvHead).
     *
     * @param layer layer index, in {@code [0, layers())}
     * @param kvHead KV head index
     * @return the protected row count, in {@code [0, rows(layer, kvHead)]}
     */
    public int protectedRows(int layer, int kvHead) {
        return protectedRows[layer][kvHead];
    }
}
