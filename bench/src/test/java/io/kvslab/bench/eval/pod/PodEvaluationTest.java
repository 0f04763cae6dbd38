package io.kvslab.bench.eval.pod;

import io.kvslab.KvArgumentException;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.eval.fidelity.FidelityConfig;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.ModelFingerprint;
import io.kvslab.policy.WindowPooling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The PoD rows end to end on a tiny configuration: bytes saved by arithmetic, metrics, equal memory, report. */
class PodEvaluationTest {
    /** Two texts cut to 128 context tokens + 16 continuation, 8 rows per block, plain-Java attention. */
    private static final FidelityConfig TINY = new FidelityConfig(2, 16, 128, 128, 8, List.of(0.5), false,
            List.of("snapkv"), 8, "java", WindowPooling.MAX, 7);

    @Test
    void oneGroupPerHeadSavesTheNonBaseKeysOfDistantBlocks(@TempDir Path dir) {
        LoadedModel m = SharedModels.bin();
        PodEvalConfig pod = new PodEvalConfig(4, List.of(16), List.of(0.0), 0.0, List.of(0.5), true, 1, 16, null);
        PodReport r = PodEvaluation.run(m, EvalTextSet.load(), TINY, pod, null);
        assertEquals(2, r.texts());
        assertEquals(128, r.meanContext());
        // pod-v2, pod-v1, snapkv + streamingllm at PoD's memory, pod+snapkv 50%, snapkv 50%, snapkv at its memory
        assertEquals(7, r.rows().size());
        String setting = "delta 0.0, n_s 4, n_r 16";
        PodResult v2 = r.row("pod-v2", setting);
        PodResult v1 = r.row("pod-v1", setting);
        assertNotNull(v2);
        assertNotNull(v1);
        // delta 0: every KV head is one group, 4 of 5 layers share layer 0's keys: 16 (layer, KV head) tables.
        assertEquals(16, v2.sharedLayerHeads());
        // 128 context rows = 16 blocks per table, 5 x 4 x 2 tables = 640 blocks. The first query is at t = 128:
        // distant positions [4, 112]; wholly distant blocks 1..13 (rows 8..111): 13 blocks of each sharing table.
        double expected = (640.0 - 16 * 13) / 640;
        assertEquals(expected, v2.kvBytesFraction(), 1e-12);
        assertEquals(expected, v1.kvBytesFraction(), 1e-12);
        // at the end (144 rows = 18 blocks, t = 143: distant [4, 127], blocks 1..15): 15 of 18 blocks per table
        assertEquals((720.0 - 16 * 15) / 720, v2.endBytesFraction(), 1e-12);
        for (PodResult p : List.of(v1, v2)) {
            assertTrue(p.meanKl() > 0 && p.top1() < 1, p.method() + ": without post-training sharing changes the model");
            assertTrue(p.top1() > 0);
        }
        PodResult snapEq = r.row("snapkv", "= mem(pod " + setting + ")");
        assertNotNull(snapEq);
        assertTrue(Math.abs(snapEq.kvBytesFraction() - v2.kvBytesFraction()) <= 1.0 / 16,
                "equal memory within one block per table: " + snapEq.kvBytesFraction());
        PodResult combined = r.row("pod-v2+snapkv", "snapkv 50%, " + setting);
        PodResult snap = r.row("snapkv", "50%");
        assertNotNull(combined);
        assertTrue(combined.kvBytesFraction() < snap.kvBytesFraction(), "PoD on top of SnapKV frees more");
        assertEquals(snap.pplFull(), v2.pplFull(), 1e-12, "one full run per text for every row");

        Map<?, ?> json = (Map<?, ?>) Json.parse(r.toJson());
        assertEquals(7, ((List<?>) json.get("rows")).size());
        assertTrue(r.table().contains("| pod-v1 | " + setting + " | 16 | 67.5% |"), r.table());
        assertTrue(r.groupings().get("0.0").startsWith("h0 [0 1 2 3 4]"));
    }

    @Test
    void aGroupingFileOfOtherWeightsIsRejected(@TempDir Path dir) {
        LoadedModel m = SharedModels.bin();
        ModelFingerprint actual = PodCalibration.fingerprint(m.model());
        ModelFingerprint other = new ModelFingerprint("weights-sha256:0000000000000000", actual.layers(),
                actual.queryHeads(), actual.kvHeads(), actual.headDim());
        Path file = dir.resolve("other.pod-groups");
        LayerGrouping.identity(other).save(file);
        PodEvalConfig pod = new PodEvalConfig(4, List.of(16), List.of(0.5), 0.5, List.of(), false, 1, 8, file);
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> PodEvaluation.run(m, EvalTextSet.load(), TINY, pod, null));
        assertTrue(e.getMessage().contains(actual.modelId()) && e.getMessage().contains(file.toString()),
                e.getMessage());
        // the model's own grouping file is accepted and used without calibrating
        LayerGrouping.ofGroupSizes(actual, 0.5, new int[][] {{5}, {5}, {5}, {5}}).save(file);
        PodReport r = PodEvaluation.run(m, EvalTextSet.load(), TINY, pod, null);
        assertEquals(16, r.row("pod-v2", "delta 0.5, n_s 4, n_r 16").sharedLayerHeads());
        assertEquals(16, r.row("pod-v1", "delta 0.5, n_s 4, n_r 16").sharedLayerHeads());
        assertEquals(null, r.similarity(), "no calibration ran");
    }
}
