package io.kvslab.pod;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Demotion driven by a grouping, v1 queries, and PoD composed with eviction. */
class PodSharingTest {
    private static final KvLayout LAYOUT = new KvLayout(4, 4, 2, 4, DType.F32, 4);
    private static final ModelFingerprint MODEL = ModelFingerprint.of("m", LAYOUT);
    /** KV head 0: {0, 1, 2, 3}; KV head 1: {0}, {1, 2}, {3}. */
    private static final LayerGrouping GROUPING = LayerGrouping.ofGroupSizes(MODEL, 0.5, new int[][] {{4}, {1, 2, 1}});

    private static Sequence filled(KvStore store, int tokens) {
        Sequence s = store.newSequence();
        for (int p = 0; p < tokens; p++) {
            for (int l = 0; l < LAYOUT.layers(); l++) {
                float[] k = new float[8];
                float[] v = new float[8];
                for (int i = 0; i < 8; i++) {
                    k[i] = l * 100 + p + i * 0.01f;
                    v[i] = -k[i];
                }
                s.append(l, k, v, p);
            }
        }
        return s;
    }

    @Test
    void demoteAllFreesTheNonBaseCopiesOfEveryLayer() {
        PodSharing pod = new PodSharing(GROUPING, new PodConfig(4, 4, PodVariant.V2_SHARED_KEYS), LAYOUT);
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = filled(store, 30)) {
            long live = store.stats().liveBytes();
            // t = 29: distant positions [4, 25] -> blocks 1..5 (rows 4..23) wholly distant: 5 per sharing table;
            // sharing tables: KV head 0 layers 1-3, KV head 1 layer 2 -> 4 tables
            assertEquals(4 * 5, pod.demoteAll(s, 29));
            assertEquals(live - 20 * LAYOUT.blockBytes(), store.stats().liveBytes());
            assertEquals(4, GROUPING.sharingLayerHeads());
            for (int b = 1; b <= 5; b++) {
                assertEquals(0, s.keyBlockBaseLayer(3, 0, b));
                assertEquals(1, s.keyBlockBaseLayer(2, 1, b));
                assertEquals(3, s.keyBlockBaseLayer(3, 1, b), "layer 3 is its own group on KV head 1");
            }
            assertEquals(0, pod.demoteAll(s, 29));
            assertEquals(0, pod.demote(s, 0, 29), "layer 0 is always a base layer");
        }
    }

    @Test
    void v1TakesEachKvHeadsQueriesFromItsBaseLayer() {
        float[][] q = new float[4][16];
        for (int l = 0; l < 4; l++) {
            for (int i = 0; i < 16; i++) {
                q[l][i] = l * 100 + i;
            }
        }
        float[] out = new float[16];
        new PodSharing(GROUPING, new PodConfig(1, 1, PodVariant.V1_SHARED_SCORES), LAYOUT).distantQueries(2, q, out);
        float[] expected = new float[16];
        System.arraycopy(q[0], 0, expected, 0, 8);    // query heads 0, 1 (KV head 0): base layer 0
        System.arraycopy(q[1], 8, expected, 8, 8);    // query heads 2, 3 (KV head 1): base layer 1
        assertArrayEquals(expected, out);
        new PodSharing(GROUPING, new PodConfig(1, 1, PodVariant.V2_SHARED_KEYS), LAYOUT).distantQueries(2, q, out);
        assertArrayEquals(q[2], out, "v2 scores distant keys with the layer's own queries");
    }

    @Test
    void evictionThenSharingNeedsGroupConsistentSelections() {
        PodSharing pod = new PodSharing(GROUPING, new PodConfig(0, 4, PodVariant.V2_SHARED_KEYS), LAYOUT);
        int[][][] perLayer = new int[4][2][];
        for (int l = 0; l < 4; l++) {
            for (int h = 0; h < 2; h++) {
                // every layer would keep different rows: 0..23 minus row l, plus the last 6 of 30
                int[] rows = new int[29];
                int n = 0;
                for (int r = 0; r < 30; r++) {
                    if (r != l) {
                        rows[n++] = r;
                    }
                }
                perLayer[l][h] = rows;
            }
        }
        int[][][] consistent = pod.groupConsistent(perLayer);
        assertSame(perLayer[0][0], consistent[3][0]);
        assertSame(perLayer[1][1], consistent[2][1]);
        assertSame(perLayer[3][1], consistent[3][1]);
        try (KvStore store = KvStore.open(LAYOUT); Sequence a = filled(store, 30); Sequence b = filled(store, 30)) {
            for (int l = 0; l < 4; l++) {
                for (int h = 0; h < 2; h++) {
                    a.keep(l, h, perLayer[l][h]);
                    b.keep(l, h, consistent[l][h]);
                }
            }
            long live = store.stats().liveBytes();
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> pod.demoteAll(a, 29));
            assertTrue(e.getMessage().contains("different positions"), e.getMessage());
            assertTrue(pod.demoteAll(b, 29) > 0);
            assertTrue(store.stats().liveBytes() < live);
            assertArrayEquals(b.positions(0, 0), b.positions(3, 0));
        }
    }
}
