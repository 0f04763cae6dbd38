package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;

import java.util.Arrays;

/**
 * Compares the K and V rows a sequence stores for one (layer, KV head) with the synthetic rows that were appended
 * at the same positions, bit for bit after rounding to the stored dtype of each side ({@link StoredValues}).
 */
public final class StoredRows {
    private StoredRows() {}

    /**
     * @param positions expected positions of the head's rows (ascending)
     * @param salts     the salt each row was generated with (which sequence wrote it), same length
     * @return null when every row matches, otherwise a message naming the first mismatch
     */
    public static String mismatch(Sequence s, int layer, int kvHead, StructuredKv gen, long[] positions, long[] salts,
                                  int rows) {
        KvLayout layout = s.layout();
        int dim = layout.headDim();
        if (s.length(layer, kvHead) != rows) {
            return "layer " + layer + " head " + kvHead + " holds " + s.length(layer, kvHead) + " rows, expected "
                    + rows;
        }
        float[] keys = new float[rows * dim];
        float[] values = new float[rows * dim];
        s.readKeys(layer, kvHead, keys);
        s.readValues(layer, kvHead, values);
        float[] row = new float[dim];
        for (int r = 0; r < rows; r++) {
            gen.keyRow(salts[r], layer, kvHead, positions[r], row, 0);
            StoredValues.round(row, 0, dim, layout.keyDtype());
            boolean keyOk = Arrays.equals(row, 0, dim, keys, r * dim, r * dim + dim);
            gen.valueRow(salts[r], layer, kvHead, positions[r], row, 0);
            StoredValues.round(row, 0, dim, layout.valueDtype());
            boolean valueOk = Arrays.equals(row, 0, dim, values, r * dim, r * dim + dim);
            if (!keyOk || !valueOk) {
                return "layer " + layer + " head " + kvHead + " row " + r + " (position " + positions[r]
                        + "): stored " + (keyOk ? "value" : "key") + " differs from the one appended there";
            }
        }
        return null;
    }
}
