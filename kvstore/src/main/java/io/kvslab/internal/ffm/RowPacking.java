package io.kvslab.internal.ffm;

import java.util.ArrayList;
import java.util.List;

/**
 * Where to put a subset of a product's rows so that OpenBLAS computes each of them with the same bits as the whole
 * product would, for the policy kernels' per-row norms ({@link PolicyKernels#valueNorms(float[], int, int[],
 * OutputProjectionWeights, int, int, float[])}).
 *
 * <p>The kernels call a single-threaded {@code sgemm} per tile of {@code tile} rows. Its result for a row is not a
 * function of the row alone: on the bundled OpenBLAS (0.3.31, Zen kernels) rows go through the microkernel in
 * blocks of {@value #BLOCK}, whose first {@value #HALF} and last {@value #HALF} slots round differently, and the
 * last {@code m mod 12} rows of an {@code m}-row tile go through tail kernels. So a subset is laid out as:
 * <ul>
 *   <li>rows in a full block of their tile ("regular") are packed into blocks of 12 whose first half takes only
 *       rows that sat in a first half and whose second half only rows from a second half (zero rows pad the
 *       shorter side), computed in tiles of a multiple of 12 rows so that no tail kernel runs;</li>
 *   <li>a tile's tail rows are recomputed as a product of exactly that tail (all of its rows, at most 11), which
 *       runs the same tail kernel.</li>
 * </ul>
 * This is a fact about one BLAS build and CPU, not a contract, so {@link PolicyKernels} checks it once per
 * geometry in each process against the whole product and computes every row when it does not hold.
 */
final class RowPacking {
    static final int BLOCK = 12;
    static final int HALF = 6;

    /** Rows of the same tail length, each group computed as products of {@code length} rows. */
    record Tails(int length, int[] starts) {
    }

    /**
     * @param packed     source row of each packed row ({@code -1}: a zero pad), a multiple of {@link #BLOCK} long
     * @param packedTile rows per sgemm for {@code packed}: a multiple of {@link #BLOCK}
     * @param tails      the tails to recompute whole
     */
    record Plan(int[] packed, int packedTile, List<Tails> tails) {
    }

    private RowPacking() {
    }

    /**
     * @param rows ascending row indices in {@code [0, n)}
     * @param n    rows of the whole product
     * @param tile rows per sgemm of the whole product
     */
    static Plan plan(int[] rows, int n, int tile) {
        int[] first = new int[rows.length];
        int[] second = new int[rows.length];
        int nf = 0;
        int ns = 0;
        List<int[]> tailList = new ArrayList<>(); // {start, length}
        int lastTailTile = -1;
        for (int r : rows) {
            int t = r / tile;
            int t0 = t * tile;
            int m = Math.min(tile, n - t0);
            int full = m / BLOCK * BLOCK;
            int p = r - t0;
            if (p < full) {
                if (p % BLOCK < HALF) {
                    first[nf++] = r;
                } else {
                    second[ns++] = r;
                }
            } else if (t != lastTailTile) {
                lastTailTile = t;
                tailList.add(new int[] {t0 + full, m - full});
            }
        }
        int blocks = Math.max((nf + HALF - 1) / HALF, (ns + HALF - 1) / HALF);
        int[] packed = new int[blocks * BLOCK];
        for (int b = 0; b < blocks; b++) {
            for (int s = 0; s < HALF; s++) {
                int i = b * HALF + s;
                packed[b * BLOCK + s] = i < nf ? first[i] : -1;
                packed[b * BLOCK + HALF + s] = i < ns ? second[i] : -1;
            }
        }
        List<Tails> tails = new ArrayList<>(2);
        for (int[] tl : tailList) {
            Tails group = null;
            for (Tails g : tails) {
                if (g.length() == tl[1]) {
                    group = g;
                }
            }
            if (group == null) {
                tails.add(new Tails(tl[1], new int[] {tl[0]}));
            } else {
                int[] s = java.util.Arrays.copyOf(group.starts(), group.starts().length + 1);
                s[s.length - 1] = tl[0];
                tails.set(tails.indexOf(group), new Tails(group.length(), s));
            }
        }
        return new Plan(packed, Math.max(BLOCK, tile / BLOCK * BLOCK), tails);
    }

    /** The values of {@code source} rows (a row index, or -1 for zeros), packed. */
    static float[] gather(float[] values, int d, int[] source) {
        float[] out = new float[Math.multiplyExact(source.length, d)];
        for (int i = 0; i < source.length; i++) {
            if (source[i] >= 0) {
                System.arraycopy(values, source[i] * d, out, i * d, d);
            }
        }
        return out;
    }

    /** The rows of the given tails, consecutive: source row indices. */
    static int[] tailRows(Tails tails) {
        int len = tails.length();
        int[] src = new int[tails.starts().length * len];
        for (int i = 0; i < tails.starts().length; i++) {
            for (int k = 0; k < len; k++) {
                src[i * len + k] = tails.starts()[i] + k;
            }
        }
        return src;
    }
}
