package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layout {@link RowPacking} gives a subset of rows: every wanted row exactly once, either in a packed slot of
 * the same kind as its slot in the whole product (same half of a 12-row block of its tile) or inside a tail that is
 * recomputed whole; packed products in tiles of a multiple of 12 rows. Whether OpenBLAS then reproduces the whole
 * product's bits is checked by {@code CriticalNormSubsetTest} (and at run time by {@code PolicyKernels}).
 */
class RowPackingTest {
    @Test
    void everyRowOnceInASlotOfItsKindOrInAWholeTail() {
        Random rnd = new Random(2);
        int[][] shapes = {{256, 1}, {256, 11}, {256, 12}, {256, 255}, {256, 256}, {256, 257}, {256, 4096},
                {256, 4100}, {512, 16384}, {512, 700}, {12, 30}, {7, 20}};
        for (int[] shape : shapes) {
            int tile = shape[0];
            int n = shape[1];
            for (double p : new double[] {1.0, 0.87, 0.3, 0.01}) {
                boolean[] want = new boolean[n];
                int count = 0;
                for (int r = 0; r < n; r++) {
                    want[r] = rnd.nextDouble() < p;
                    count += want[r] ? 1 : 0;
                }
                int[] rows = new int[count];
                for (int r = 0, i = 0; r < n; r++) {
                    if (want[r]) {
                        rows[i++] = r;
                    }
                }
                check(rows, n, tile);
            }
        }
    }

    private static void check(int[] rows, int n, int tile) {
        RowPacking.Plan plan = RowPacking.plan(rows, n, tile);
        String where = "n " + n + " tile " + tile + " rows " + rows.length;
        assertEquals(0, plan.packed().length % RowPacking.BLOCK, where);
        assertEquals(0, plan.packedTile() % RowPacking.BLOCK, where);
        assertTrue(plan.packedTile() <= Math.max(tile, RowPacking.BLOCK), where);
        int[] seen = new int[n];
        for (int i = 0; i < plan.packed().length; i++) {
            int r = plan.packed()[i];
            if (r < 0) {
                continue;
            }
            seen[r]++;
            int t0 = r / tile * tile;
            int m = Math.min(tile, n - t0);
            int p = r - t0;
            assertTrue(p < m / RowPacking.BLOCK * RowPacking.BLOCK, where + ": row " + r + " is a tail row");
            assertEquals(p % RowPacking.BLOCK < RowPacking.HALF, i % RowPacking.BLOCK < RowPacking.HALF,
                    where + ": row " + r + " moved to the other half of a block");
        }
        for (RowPacking.Tails tails : plan.tails()) {
            for (int start : tails.starts()) {
                int t0 = start / tile * tile;
                int m = Math.min(tile, n - t0);
                assertEquals(t0 + m / RowPacking.BLOCK * RowPacking.BLOCK, start, where + ": a tail starts mid-block");
                assertEquals(m % RowPacking.BLOCK, tails.length(), where + ": not the whole tail of its tile");
                for (int k = 0; k < tails.length(); k++) {
                    seen[start + k]++;
                }
            }
        }
        for (int r : rows) {
            assertEquals(1, seen[r], where + ": row " + r + " computed " + seen[r] + " times");
        }
    }
}
