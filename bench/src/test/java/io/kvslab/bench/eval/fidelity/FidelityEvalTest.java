package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.report.Json;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.policy.WindowPooling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A tiny fidelity configuration end to end on stories260K: compress, teacher-force, compare, report, plot. */
class FidelityEvalTest {
    private static FidelityConfig tiny(List<Double> fractions, boolean dynamic, List<String> policies) {
        return new FidelityConfig(2, 16, 64, 128, 8, fractions, dynamic, policies, 8, "java",
                WindowPooling.MAX, 7);
    }

    @Test
    void tinyRunMeasuresEveryPolicyAndBudget(@TempDir Path dir) throws Exception {
        LoadedModel m = SharedModels.bin();
        FidelityReport r = FidelityEval.run(m, EvalTextSet.load(),
                tiny(List.of(0.25), true, List.of("streamingllm", "snapkv", "criticalkv", "dbudgetkv")), null);
        assertEquals(2, r.texts());
        assertEquals(128, r.meanContext());
        // DBudgetKV has only the dynamic column
        assertEquals(3 + 4, r.results().size());
        double pplFull = r.results().get(0).pplFull();
        for (BudgetResult b : r.results()) {
            assertEquals(2, b.texts());
            assertEquals(pplFull, b.pplFull(), 1e-12, "every row compares with the same full run");
            assertTrue(b.meanKl() > 0, b.policy() + " " + b.budget() + ": evicting rows must change the logits");
            assertTrue(b.top1() > 0 && b.top1() <= 1);
            assertTrue(b.meanPerturbation() > 0);
            // store bytes are whole blocks of 8 rows, for the kept rows as for the full context (128 rows = 16 blocks)
            assertTrue(Math.abs(b.kvBytesFraction() - b.keptRows()) < 8.0 / 128, b.policy() + " " + b.budget());
            if (b.budget().equals("25%")) {
                assertEquals(0.25, b.keptRows(), 0.01, b.policy());
            }
        }
        BudgetResult db = r.result("dbudgetkv", "dynamic");
        assertNotNull(db);
        assertTrue(db.keptRows() > 2.0 / 5 && db.keptRows() < 1, "layers 0-1 whole, some rows cut: " + db.keptRows());
        // the other policies' dynamic column runs at DBudgetKV's kept fraction
        assertEquals(db.keptRows(), r.result("snapkv", "dynamic").keptRows(), 0.02);

        assertEquals(4, r.heads().size(), "criticalkv vs snapkv for two budgets and two query sets");
        for (HeadComparison h : r.heads()) {
            assertEquals(5 * 8, h.heads());
            assertEquals(2 * 5 * 8, h.instances());
            assertTrue(h.lower() + h.equal() <= h.heads());
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.toJson());
        assertEquals(7, ((List<?>) json.get("results")).size());
        assertEquals(4, ((List<?>) json.get("criticalHeads")).size());
        assertTrue(r.table().contains("| criticalkv | 25% |"));
        for (Path p : r.writePlots(dir)) {
            BufferedImage img = ImageIO.read(p.toFile());
            assertNotNull(img, p + " is a readable PNG");
            assertEquals(1000, img.getWidth());
        }
    }

    @Test
    void keepingEverythingReproducesTheFullRunExactly() {
        FidelityReport r = FidelityEval.run(SharedModels.bin(), EvalTextSet.load(),
                tiny(List.of(1.0), false, List.of("snapkv", "knorm")), null);
        for (BudgetResult b : r.results()) {
            assertEquals(1.0, b.keptRows());
            assertEquals(1.0, b.kvBytesFraction(), 1e-12);
            assertEquals(0.0, b.meanKl());
            assertEquals(1.0, b.top1());
            assertEquals(b.pplFull(), b.pplCompressed(), 0.0);
            assertEquals(0.0, b.meanPerturbation());
        }
    }

    @Test
    void badConfigurationsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> tiny(List.of(0.0), false, List.of("snapkv")));
        assertThrows(IllegalArgumentException.class, () -> tiny(List.of(), false, List.of("snapkv")));
        assertThrows(RuntimeException.class, () -> tiny(List.of(0.5), false, List.of("h2o")));
        FidelityConfig tooLong = new FidelityConfig(1, 2000, 64, 128, 8, List.of(0.5), false, List.of("snapkv"), 8, "java",
                WindowPooling.MAX, 7);
        assertThrows(IllegalArgumentException.class,
                () -> FidelityEval.run(SharedModels.bin(), EvalTextSet.load(), tooLong, null));
    }
}
