package io.kvslab.policy;

import io.kvslab.KvArgumentException;

import java.util.Arrays;

/**
 * What a layer-at-a-time compression did to one sequence: the rows of every (layer, KV head) before and after. Only
 * counts, so a result stays small however long the sequence is (the kept row indices lived one layer at a time).
 *
 * @param rowsBefore {@code [layer][kvHead]}
 * @param rowsAfter  {@code [layer][kvHead]}
 */
public record CompressionResult(int[][] rowsBefore, int[][] rowsAfter) {
    /**
     * Checks that both arrays are given with one entry per layer.
     *
     * @throws KvArgumentException if an array is null or their layer counts differ
     */
    public CompressionResult {
        if (rowsBefore == null || rowsAfter == null || rowsBefore.length != rowsAfter.length) {
            throw new KvArgumentException("a compression result needs rows before and after for every layer");
        }
    }

    /**
     * Rows of (layer, kvHead) after the compression.
     *
     * @param layer layer index
     * @param kvHead KV head index
     * @return the row count after
     */
    public int rowsAfter(int layer, int kvHead) {
        return rowsAfter[layer][kvHead];
    }

    /**
     * Rows kept over all layers and heads.
     *
     * @return the sum of {@code rowsAfter}
     */
    public long keptRows() {
        return sum(rowsAfter);
    }

    /**
     * Rows before, over all layers and heads.
     *
     * @return the sum of {@code rowsBefore}
     */
    public long rowsBeforeTotal() {
        return sum(rowsBefore);
    }

    /**
     * Fraction of rows kept (1 for an empty sequence).
     *
     * @return {@code keptRows() / rowsBeforeTotal()}, in {@code [0, 1]}
     */
    public double keptFraction() {
        long before = rowsBeforeTotal();
        return before == 0 ? 1.0 : (double) keptRows() / before;
    }

    private static long sum(int[][] a) {
        long n = 0;
        for (int[] layer : a) {
            for (int x : layer) {
                n += x;
            }
        }
        return n;
    }

    /** The counts per [layer][kvHead] element by element, and the total kept. */
    @Override
    public String toString() {
        return "CompressionResult[rowsBefore=" + Arrays.deepToString(rowsBefore) + ", rowsAfter="
                + Arrays.deepToString(rowsAfter) + ", kept " + keptRows() + " rows]";
    }
}
