package io.kvslab.pod;

import io.kvslab.KvArgumentException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Similarity, greedy grouping on hand-made attention maps, and the grouping file. */
class LayerGroupingTest {
    private static final ModelFingerprint MODEL = new ModelFingerprint("tiny.bin sha256:00aa", 5, 4, 2, 8);
    private static final double[] A = {0.5, 0.3, 0.2, 0, 0, 0};
    private static final double[] B = {0, 0, 0, 0.1, 0.6, 0.3};   // support disjoint from A

    @TempDir
    Path dir;

    @Test
    void jensenShannonSimilarityOnHandCases() {
        assertEquals(1.0, LayerSimilarity.similarity(A, A), 1e-12);
        assertEquals(0.0, LayerSimilarity.similarity(A, B), 1e-12);
        // p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JS = (log2(4/3) + (log2(2/3) + log2(2)) / 2) / 2
        double js = (log2(4.0 / 3) + 0.5 * (log2(2.0 / 3) + 1)) / 2;
        assertEquals(1 - js, LayerSimilarity.similarity(new double[] {1, 0}, new double[] {0.5, 0.5}), 1e-12);
        assertEquals(0.6887, 1 - js, 1e-4);
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }

    /** One query: rows[layer][queryHead]. */
    private static double[][][] query(double[][]... perLayer) {
        return perLayer;
    }

    @Test
    void greedyGroupsFromHandMadeAttentionMaps() {
        LayerSimilarity sim = LayerSimilarity.of(MODEL);
        // query heads 0, 1 -> KV head 0: layers 0-2 attend like A, layers 3-4 like B.
        // query heads 2, 3 -> KV head 1: A, B, B, A, B.
        double[][][] q = query(
                new double[][] {A, A, A, A},
                new double[][] {A, A, B, B},
                new double[][] {A, A, B, B},
                new double[][] {B, B, A, A},
                new double[][] {B, B, B, B});
        sim.add(q);
        sim.add(q);
        assertEquals(2, sim.queries());
        LayerGrouping g = sim.group(0.5, MODEL);
        assertArrayEquals(new int[] {0, 0, 0, 3, 3}, g.baseLayers(0));
        assertArrayEquals(new int[] {0, 1, 1, 3, 4}, g.baseLayers(1));
        assertEquals(List.of(List.of(0, 1, 2), List.of(3, 4)), g.groups(0));
        assertEquals(2, g.groupCount(0));
        assertEquals(4, g.groupCount(1));
        assertEquals((5 - 2) + (5 - 4), g.sharingLayerHeads());
        assertEquals("h0 [0 1 2][3 4] | h1 [0][1 2][3][4]", g.describeGroups());
    }

    @Test
    void gqaGroupAveragesItsQueryHeadsAgainstDelta() {
        LayerSimilarity sim = LayerSimilarity.of(MODEL);
        // KV head 0: query head 0 always A, query head 1 alternates A, B: mean similarity 0.5 vs layer 0
        // wherever query head 1 is B. KV head 1 constant.
        sim.add(query(new double[][] {A, A, A, A}, new double[][] {A, B, A, A}, new double[][] {A, A, A, A},
                new double[][] {A, B, A, A}, new double[][] {A, A, A, A}));
        assertEquals(0.5, sim.kvHeadSimilarity(0, 0, 1), 1e-12);
        assertEquals(1.0, sim.kvHeadSimilarity(1, 0, 4), 1e-12);
        assertArrayEquals(new int[] {0, 0, 0, 0, 0}, sim.group(0.5, MODEL).baseLayers(0), "0.5 >= delta joins");
        // delta 0.6: layer 1 starts a group; layer 2 vs layer 1 is again 0.5 < 0.6: new group; and so on
        assertArrayEquals(new int[] {0, 1, 2, 3, 4}, sim.group(0.6, MODEL).baseLayers(0));
        assertArrayEquals(new int[] {0, 0, 0, 0, 0}, sim.group(0.6, MODEL).baseLayers(1));
    }

    @Test
    void eachLayerIsComparedWithTheLowestLayerOfTheGroup() {
        // a drifting chain: 0~1 and 1~2 are similar, 0 and 2 are not -> {0, 1}, {2}
        double[][] m = {{1, 0.8, 0.3}, {0.8, 1, 0.9}, {0.3, 0.9, 1}};
        assertArrayEquals(new int[] {0, 0, 2}, LayerSimilarity.groupGreedy(m, 0.5));
        assertArrayEquals(new int[] {0, 1, 1}, LayerSimilarity.groupGreedy(m, 0.85), "1 starts a group that 2 joins");
        assertArrayEquals(new int[] {0, 0, 0}, LayerSimilarity.groupGreedy(m, 0.0));
        assertThrows(KvArgumentException.class, () -> LayerSimilarity.groupGreedy(m, 1.5));
    }

    @Test
    void badAttentionRowsAreRejected() {
        LayerSimilarity sim = LayerSimilarity.of(MODEL);
        double[][] ok = {A, A, A, A};
        assertThrows(KvArgumentException.class, () -> sim.add(new double[][][] {ok, ok, ok, ok}));
        assertThrows(KvArgumentException.class, () -> sim.add(new double[][][] {ok, ok, ok, ok,
                {A, A, A, {0.5, 0.4, 0, 0, 0, 0}}}), "rows must sum to 1");
        assertThrows(KvArgumentException.class, () -> sim.add(new double[][][] {ok, ok, ok, ok,
                {A, A, A, {1, 0}}}), "rows must have equal length");
        assertThrows(KvArgumentException.class, () -> sim.group(0.5, MODEL), "no data yet");
    }

    /** save renames over its target: a directory (or device, FIFO) there is refused, not replaced. */
    @Test
    void saveRefusesToReplaceADirectory() throws java.io.IOException {
        LayerGrouping g = LayerGrouping.ofGroupSizes(MODEL, 0.5, new int[][] {{2, 3}, {1, 4}});
        Path sub = java.nio.file.Files.createDirectory(dir.resolve("groups"));
        java.io.UncheckedIOException e = assertThrows(java.io.UncheckedIOException.class, () -> g.save(sub));
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        assertTrue(java.nio.file.Files.isDirectory(sub));
    }

    @Test
    void fileRoundTripAndModelCheck() {
        LayerGrouping g = LayerGrouping.ofGroupSizes(MODEL, 0.5, new int[][] {{2, 3}, {1, 4}});
        Path file = dir.resolve("tiny.bin.pod-groups");
        g.save(file);
        assertEquals(g, LayerGrouping.load(file));
        assertEquals(g, LayerGrouping.load(file, MODEL));
        assertEquals(LayerGrouping.besideModel(dir.resolve("tiny.bin")), file);

        ModelFingerprint otherWeights = new ModelFingerprint("tiny.bin sha256:00bb", 5, 4, 2, 8);
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> LayerGrouping.load(file, otherWeights));
        assertTrue(e.getMessage().contains("sha256:00aa") && e.getMessage().contains("sha256:00bb")
                && e.getMessage().contains("recalibrate"), e.getMessage());
        ModelFingerprint otherShape = new ModelFingerprint("tiny.bin sha256:00aa", 6, 4, 2, 8);
        assertThrows(KvArgumentException.class, () -> LayerGrouping.load(file, otherShape));
        KvLayout wrong = new KvLayout(5, 4, 4, 8, DType.F32, 16);
        KvArgumentException layoutError = assertThrows(KvArgumentException.class,
                () -> g.requireMatches(wrong));
        assertTrue(layoutError.getMessage().contains("4 KV heads"), layoutError.getMessage());
        assertThrows(KvArgumentException.class,
                () -> new PodSharing(g, new PodConfig(4, 8, PodVariant.V2_SHARED_KEYS), wrong));
    }

    @Test
    void malformedFilesAreRejectedWithTheLine() throws Exception {
        String good = LayerGrouping.ofGroupSizes(MODEL, 0.5, new int[][] {{5}, {1, 1, 3}}).format();
        assertEquals(MODEL, LayerGrouping.parse(good, "x").model());
        Path f = dir.resolve("bad");
        Files.writeString(f, good.replace("kvslab-pod-grouping 1", "kvslab-pod-grouping 2"));
        KvArgumentException version = assertThrows(KvArgumentException.class, () -> LayerGrouping.load(f));
        assertTrue(version.getMessage().contains("line 1"), version.getMessage());
        String nonConsecutive = good.replace("kv-head 1 base 0 1 2 2 2", "kv-head 1 base 0 1 2 1 2");
        KvArgumentException groups = assertThrows(KvArgumentException.class,
                () -> LayerGrouping.parse(nonConsecutive, "g"));
        assertTrue(groups.getMessage().contains("consecutive"), groups.getMessage());
        assertThrows(KvArgumentException.class, () -> LayerGrouping.parse(
                good.replace("kv-head 1 base 0 1 2 2 2\n", ""), "missing"));
        assertThrows(KvArgumentException.class, () -> LayerGrouping.parse(
                good.replace("kv-head 1 base 0 1 2 2 2", "kv-head 1 base 0 1 2 2"), "short"));
        assertThrows(KvArgumentException.class, () -> LayerGrouping.parse(good.replace("layers 5", "layers x"),
                "nan"));
        assertThrows(KvArgumentException.class, () -> LayerGrouping.parse(good + "colour blue\n", "extra"));
        assertThrows(KvArgumentException.class, () -> LayerGrouping.parse("", "empty"));
    }
}
