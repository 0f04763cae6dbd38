package io.kvslab.internal.ffm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where to put a subset of a product's rows so that OpenBLAS computes each of them with the same bits as the whole
 * product would, for the policy kernels' per-row norms ({@link PolicyKernels#valueNorms(float[], int, int[],
 * OutputProjectionWeights, int, int, float[])}).
 *
 * <p>The kernels call a single-threaded {@code sgemm} per tile of rows. Its result for a row is not a function of
 * the row alone: on the bundled OpenBLAS (0.3.31, Zen kernels) the rows of an {@code m}-row product go through the
 * microkernel in blocks of {@value #BLOCK}, whose first {@value #HALF} slots ({@link #A}) and last {@value #HALF}
 * ({@link #B}) round differently; of the {@code r = m mod 12} rows left, the first 8 (if {@code r >= 8},
 * {@link #Q8}) or 4 (if {@code r >= 4}, {@link #Q4}) go through other kernels and the last 1-3 round as B. So a
 * subset is laid out in packed tiles of the whole product's tile shape ({@code 12 k + r}, the last tile with fewer
 * blocks): every wanted row in a slot of its kind, zero rows padding the rest. A row whose kind the packed shape
 * lacks (a tail of the whole product's last, shorter tile) is computed in a product of exactly that tail, as before.
 *
 * <p>Packed tiles may also be taller than the whole product's ({@code packedTile}, again {@code 12 k + r}): fewer
 * {@code sgemm} calls, each of which packs the head's whole W_o slice again. A taller tile has as many {@link #Q4}
 * slots as a short one (4), so the {@link #Q4} rows it cannot hold are returned as {@code paired}: the caller
 * computes them the way the 4-row kernel does (two FMA chains, {@code kvs_policy_value_norms_paired}).
 *
 * <p>This is a fact about one BLAS build and CPU, not a contract, so {@link PolicyKernels} checks it once per
 * geometry in each process against the whole product and computes every row when it does not hold. Since ABI 8 the
 * packing is the fallback of the fused kernel, which uses {@link #kind} alone: each row's slot kind in the whole call
 * picks the arithmetic it is computed with.
 */
final class RowPacking {
    static final int BLOCK = 12;
    static final int HALF = 6;
    static final int A = 0;
    static final int B = 1;
    static final int Q4 = 2;
    static final int Q8 = 3;
    private static final int KINDS = 4;

    /**
     * @param packed     source row of each packed row ({@code -1}: a zero pad)
     * @param packedTile rows per sgemm for {@code packed} (the whole product's tile or a taller one; the last tile may
     *                   be shorter)
     * @param tails      {first row, rows} of whole-product tails to compute as products of exactly those rows
     * @param paired     ascending {@link #Q4} rows left for the paired-chain kernel (empty unless asked for)
     */
    record Plan(int[] packed, int packedTile, List<int[]> tails, int[] paired) {
    }

    private RowPacking() {
    }

    /** The kind of slot {@code p} of an {@code m}-row product. */
    static int kind(int p, int m) {
        int full = m / BLOCK * BLOCK;
        if (p < full) {
            return p % BLOCK < HALF ? A : B;
        }
        int q = p - full;
        int r = m - full;
        if (r >= 8 && q < 8) {
            return Q8;
        }
        if (r < 8 && r >= 4 && q < 4) {
            return Q4;
        }
        return B;
    }

    /**
     * Packed tiles of the whole product's shape, every row in a packed slot or a tail.
     *
     * @param rows ascending row indices in {@code [0, n)}
     * @param n    rows of the whole product
     * @param tile rows per sgemm of the whole product
     */
    static Plan plan(int[] rows, int n, int tile) {
        return plan(rows, n, tile, tile, false);
    }

    /**
     * @param rows       ascending row indices in {@code [0, n)}
     * @param n          rows of the whole product
     * @param tile       rows per sgemm of the whole product (decides each row's kind)
     * @param packedTile rows per sgemm of the packed tiles
     * @param pairQ4     whether {@link #Q4} rows beyond the packed tiles' Q4 slots go to {@code paired} (otherwise
     *                   the tiles are as many as every kind needs, and a packed shape without Q4 slots sends them
     *                   to tails)
     */
    static Plan plan(int[] rows, int n, int tile, int packedTile, boolean pairQ4) {
        int k = packedTile / BLOCK;
        int r0 = packedTile % BLOCK;
        int[] perTile = new int[KINDS];
        perTile[A] = k * HALF;
        perTile[B] = k * HALF;
        for (int j = 0; j < r0; j++) {
            perTile[kind(k * BLOCK + j, packedTile)]++;
        }
        int[][] byKind = new int[KINDS][rows.length];
        int[] count = new int[KINDS];
        List<int[]> tails = new ArrayList<>();
        int lastTailStart = -1;
        for (int r : rows) {
            int t0 = r / tile * tile;
            int m = Math.min(tile, n - t0);
            int kd = kind(r - t0, m);
            int start = t0 + m / BLOCK * BLOCK;
            if (r >= start && start == lastTailStart) {
                continue; // in a tail already computed whole (rows ascend: a tail's odd kind comes first)
            }
            if (perTile[kd] > 0 || (pairQ4 && kd == Q4)) {
                byKind[kd][count[kd]++] = r;
            } else {
                {
                    lastTailStart = start;
                    tails.add(new int[] {start, t0 + m - start});
                }
            }
        }
        int tiles = 0;
        for (int kd = 0; kd < KINDS; kd++) {
            if (perTile[kd] > 0 && !(pairQ4 && kd == Q4)) {
                tiles = Math.max(tiles, ceil(count[kd], perTile[kd]));
            }
        }
        if (tiles == 0) {
            return new Plan(new int[0], Math.max(1, packedTile), tails, Arrays.copyOf(byKind[Q4],
                    pairQ4 ? count[Q4] : 0));
        }
        int tailB = perTile[B] - k * HALF;
        int before = (tiles - 1) * k * HALF;
        int lastBlocks = Math.max(0, Math.max(ceil(count[A] - before, HALF),
                ceil(count[B] - (tiles - 1) * perTile[B] - tailB, HALF)));
        int lastSize = lastBlocks * BLOCK + r0;
        int[] packed = new int[(tiles - 1) * packedTile + lastSize];
        int[] next = new int[KINDS];
        int at = 0;
        for (int t = 0; t < tiles; t++) {
            int size = t < tiles - 1 ? packedTile : lastSize;
            for (int p = 0; p < size; p++) {
                int kd = kind(p, size);
                packed[at++] = next[kd] < count[kd] ? byKind[kd][next[kd]++] : -1;
            }
        }
        // rows whose kind had too few slots: only Q4 when pairQ4 (otherwise the tiles cover every kind)
        int[] paired = Arrays.copyOfRange(byKind[Q4], next[Q4], Math.max(next[Q4], count[Q4]));
        return new Plan(packed, packedTile, tails, paired);
    }

    private static int ceil(int a, int b) {
        return a <= 0 ? 0 : (a + b - 1) / b;
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

    /** Source rows of a tail {first row, rows}. */
    static int[] tailRows(int[] tail) {
        int[] src = new int[tail[1]];
        for (int i = 0; i < src.length; i++) {
            src[i] = tail[0] + i;
        }
        return src;
    }
}
