package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layout {@link RowPacking} gives a subset of rows: every wanted row exactly once, in a packed slot of the same
 * kind as its slot in the whole product (packed tiles of the whole product's tile shape) or in a whole tail. Whether OpenBLAS then reproduces the whole
 * product's bits is checked by {@code CriticalNormSubsetTest} (and at run time by {@code PolicyKernels}).
 */
class RowPackingTest {
    @Test
    void everyRowOnceInASlotOfItsKind() {
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

    @Test
    void tallPackedTilesEveryRowOnceAndOnlyTheFourRowKindPaired() {
        Random rnd = new Random(5);
        int[][] shapes = {{256, 1024, 2600}, {256, 1024, 4096}, {256, 1024, 255}, {256, 1024, 32768}, {256, 508, 700},
                {12, 40, 100}};
        for (int[] shape : shapes) {
            int tile = shape[0];
            int packedTile = shape[1];
            int n = shape[2];
            for (double p : new double[] {1.0, 0.875, 0.3, 0.01}) {
                int[] rows = java.util.stream.IntStream.range(0, n).filter(r -> rnd.nextDouble() < p).toArray();
                RowPacking.Plan plan = RowPacking.plan(rows, n, tile, packedTile, true);
                String where = "n " + n + " tile " + tile + "/" + packedTile + " rows " + rows.length;
                assertEquals(packedTile, plan.packedTile(), where);
                int[] seen = new int[n];
                int len = plan.packed().length;
                for (int i = 0; i < len; i++) {
                    int r = plan.packed()[i];
                    if (r >= 0) {
                        seen[r]++;
                        int t0 = r / tile * tile;
                        int p0 = i / packedTile * packedTile;
                        assertEquals(RowPacking.kind(r - t0, Math.min(tile, n - t0)),
                                RowPacking.kind(i - p0, Math.min(packedTile, len - p0)), where + ": row " + r);
                    }
                }
                for (int[] tail : plan.tails()) {
                    for (int q = 0; q < tail[1]; q++) {
                        seen[tail[0] + q]++;
                    }
                }
                int prev = -1;
                for (int r : plan.paired()) {
                    int t0 = r / tile * tile;
                    assertEquals(RowPacking.Q4, RowPacking.kind(r - t0, Math.min(tile, n - t0)), where + ": paired " + r);
                    assertTrue(r > prev, where + ": paired rows ascend");
                    prev = r;
                    seen[r]++;
                }
                for (int r : rows) {
                    assertEquals(1, seen[r], where + ": row " + r + " computed " + seen[r] + " times");
                }
                // packed tiles hold 4 rows of the 4-row kind each: the rest are paired, no more
                int q4 = 0;
                for (int r : rows) {
                    int t0 = r / tile * tile;
                    q4 += RowPacking.kind(r - t0, Math.min(tile, n - t0)) == RowPacking.Q4 ? 1 : 0;
                }
                int tiles = len == 0 ? 0 : (len + packedTile - 1) / packedTile;
                int slots = packedTile % RowPacking.BLOCK >= 4 && packedTile % RowPacking.BLOCK < 8 ? 4 * tiles : 0;
                assertEquals(Math.max(0, q4 - slots), plan.paired().length, where + ": paired rows");
            }
        }
    }

    private static void check(int[] rows, int n, int tile) {
        RowPacking.Plan plan = RowPacking.plan(rows, n, tile);
        String where = "n " + n + " tile " + tile + " rows " + rows.length;
        int pt = plan.packedTile();
        assertEquals(tile, pt, where);
        int len = plan.packed().length;
        int[] seen = new int[n];
        for (int i = 0; i < len; i++) {
            int r = plan.packed()[i];
            if (r < 0) {
                continue;
            }
            seen[r]++;
            int t0 = r / tile * tile;
            int p0 = i / pt * pt;
            assertEquals(RowPacking.kind(r - t0, Math.min(tile, n - t0)), RowPacking.kind(i - p0, Math.min(pt, len - p0)),
                    where + ": row " + r + " moved to a slot of another kind");
        }
        if (len > 0) {
            int last = len - (len - 1) / pt * pt;
            assertEquals(tile % RowPacking.BLOCK, last % RowPacking.BLOCK, where + ": last packed tile of " + last);
        }
        for (int[] tail : plan.tails()) {
            int t0 = tail[0] / tile * tile;
            int m = Math.min(tile, n - t0);
            assertEquals(t0 + m / RowPacking.BLOCK * RowPacking.BLOCK, tail[0], where + ": a tail starts mid-block");
            assertEquals(m % RowPacking.BLOCK, tail[1], where + ": not the whole tail of its tile");
            for (int q = 0; q < tail[1]; q++) {
                seen[tail[0] + q]++;
            }
        }
        for (int r : rows) {
            assertEquals(1, seen[r], where + ": row " + r + " computed " + seen[r] + " times");
        }
    }

    @Test
    void kindsOfSlots() {
        // a 256-row product: 21 blocks of 12, then one group of 4
        assertEquals(RowPacking.A, RowPacking.kind(0, 256));
        assertEquals(RowPacking.A, RowPacking.kind(5, 256));
        assertEquals(RowPacking.B, RowPacking.kind(6, 256));
        assertEquals(RowPacking.B, RowPacking.kind(251, 256));
        assertEquals(RowPacking.Q4, RowPacking.kind(252, 256));
        assertEquals(RowPacking.Q4, RowPacking.kind(255, 256));
        // 512 rows (the L2 kernel's tile): 42 blocks, then a group of 8
        assertEquals(RowPacking.Q8, RowPacking.kind(504, 512));
        assertEquals(RowPacking.Q8, RowPacking.kind(511, 512));
        // 19 rows: a block, a group of 4, then 3 rows rounded as B
        assertEquals(RowPacking.Q4, RowPacking.kind(15, 19));
        assertEquals(RowPacking.B, RowPacking.kind(16, 19));
        assertEquals(RowPacking.B, RowPacking.kind(0, 3));
    }
}
