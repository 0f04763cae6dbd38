package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.Sequence;

import java.util.Arrays;

/**
 * What a policy decided for one sequence: for every (layer, KV head) the strictly ascending row indices to keep.
 * {@link #applyTo} applies it to a sequence, which frees the other rows.
 *
 * @param kept          {@code [layer][kvHead][]} kept row indices, ascending
 * @param lengthsBefore {@code [layer][kvHead]} row counts the selection was made from
 */
public record Selection(int[][][] kept, int[][] lengthsBefore) {
    /**
     * Checks that there is one kept list and one length per (layer, KV head).
     *
     * @throws KvArgumentException if the arrays are null or their shapes disagree
     */
    public Selection {
        if (kept == null || lengthsBefore == null || kept.length != lengthsBefore.length) {
            throw new KvArgumentException("a selection needs one kept list and one length per (layer, KV head)");
        }
        for (int l = 0; l < kept.length; l++) {
            if (kept[l].length != lengthsBefore[l].length) {
                throw new KvArgumentException("layer " + l + " has " + kept[l].length + " kept lists for "
                        + lengthsBefore[l].length + " KV heads");
            }
            for (int h = 0; h < kept[l].length; h++) {
                int[] rows = kept[l][h];
                for (int i = 0; i < rows.length; i++) {
                    if (rows[i] < 0 || rows[i] >= lengthsBefore[l][h] || (i > 0 && rows[i] <= rows[i - 1])) {
                        throw new KvArgumentException("layer " + l + " head " + h + ": kept rows must be strictly "
                                + "ascending indices in [0, " + lengthsBefore[l][h] + "); index " + i + " is "
                                + rows[i]);
                    }
                }
            }
        }
    }

    /**
     * Number of layers.
     *
     * @return the layer count
     */
    public int layers() {
        return kept.length;
    }

    /**
     * Kept row indices of (layer, kvHead), ascending.
     *
     * @param layer layer index, in {@code [0, layers())}
     * @param kvHead KV head index
     * @return the array itself (not a copy): do not modify it
     */
    public int[] kept(int layer, int kvHead) {
        return kept[layer][kvHead];
    }

    /**
     * Rows kept over all layers and heads.
     *
     * @return the sum of kept rows
     */
    public long keptRows() {
        long n = 0;
        for (int[][] layer : kept) {
            for (int[] head : layer) {
                n += head.length;
            }
        }
        return n;
    }

    /**
     * Rows before the selection over all layers and heads.
     *
     * @return the sum of row counts before
     */
    public long rowsBefore() {
        long n = 0;
        for (int[] layer : lengthsBefore) {
            for (int len : layer) {
                n += len;
            }
        }
        return n;
    }

    /**
     * Fraction of rows kept (1 for an empty sequence).
     *
     * @return {@code keptRows() / rowsBefore()}, in {@code [0, 1]}
     */
    public double keptFraction() {
        long before = rowsBefore();
        return before == 0 ? 1.0 : (double) keptRows() / before;
    }

    /**
     * Keeps the selected rows of {@code sequence} and frees the others, layer by layer with
     * {@code Sequence.keep(layer, rows)}: each layer is all or nothing (the fresh blocks of all its heads are reserved
     * before any head changes). Checks first that the sequence still has the shape and row counts the selection was
     * made from, so a stale selection changes nothing. If a memory limit is hit in layer l, layers before l stay
     * compressed and layer l and later ones are exactly as before.
     *
     * @param sequence the open sequence the selection was made from
     */
    public void applyTo(Sequence sequence) {
        if (sequence == null) {
            throw new KvArgumentException("applyTo needs a sequence (got null)");
        }
        int layers = sequence.layout().layers();
        int kvHeads = sequence.layout().kvHeads();
        if (layers != kept.length) {
            throw new KvArgumentException("the selection has " + kept.length + " layers but the sequence has " + layers);
        }
        for (int l = 0; l < layers; l++) {
            if (kept[l].length != kvHeads) {
                throw new KvArgumentException("the selection has " + kept[l].length + " KV heads in layer " + l
                        + " but the sequence has " + kvHeads);
            }
            for (int h = 0; h < kvHeads; h++) {
                int len = sequence.length(l, h);
                if (len != lengthsBefore[l][h]) {
                    throw new KvArgumentException("layer " + l + " head " + h + " has " + len + " rows but the "
                            + "selection was made from " + lengthsBefore[l][h] + "; select again");
                }
            }
        }
        for (int l = 0; l < layers; l++) {
            sequence.keep(l, kept[l]);
        }
    }

    /**
     * Whether (layer, kvHead) keeps every row (nothing to evict).
     *
     * @param layer layer index, in {@code [0, layers())}
     * @param kvHead KV head index
     * @return {@code true} if no row of that head is evicted
     */
    public boolean keepsAll(int layer, int kvHead) {
        return kept[layer][kvHead].length == lengthsBefore[layer][kvHead];
    }

    /** A summary: the kept row indices can be millions, so only their counts (the default printed identities). */
    @Override
    public String toString() {
        return "Selection[layers=" + layers() + ", kept " + keptRows() + " of " + rowsBefore() + " rows, lengthsBefore="
                + Arrays.deepToString(lengthsBefore) + "]";
    }
}
