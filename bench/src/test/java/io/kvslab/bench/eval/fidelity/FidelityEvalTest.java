package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.model.KvDtypes;

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
        }
        // intervals hold their means; the paired difference is exactly the difference of the two rows' means
        for (BudgetResult b : r.results()) {
            assertTrue(b.klInterval().low() <= b.meanKl() && b.meanKl() <= b.klInterval().high(), b.toString());
            assertTrue(b.top1Interval().low() <= b.top1() && b.top1() <= b.top1Interval().high(), b.toString());
            assertTrue(b.deltaPplInterval().low() <= b.deltaPpl() + 1e-12
                    && b.deltaPpl() - 1e-12 <= b.deltaPplInterval().high(), b.toString());
        }
        assertEquals(2, r.differences().size(), "criticalkv - snapkv at 25% and dynamic");
        for (String budget : List.of("25%", "dynamic")) {
            PairedDifference d = r.difference("criticalkv", "f32", budget);
            assertEquals("snapkv", d.base());
            assertEquals(r.result("criticalkv", budget).meanKl() - r.result("snapkv", budget).meanKl(), d.meanKl(),
                    1e-12);
            assertEquals(r.result("criticalkv", budget).deltaPpl() - r.result("snapkv", budget).deltaPpl(),
                    d.deltaPpl(), 1e-9);
        }

        @SuppressWarnings("unchecked")
        Map<String, Object> json = (Map<String, Object>) Json.parse(r.toJson());
        assertEquals(7, ((List<?>) json.get("results")).size());
        assertEquals(2, ((List<?>) json.get("differences")).size());
        assertEquals(4, ((List<?>) json.get("criticalHeads")).size());
        assertTrue(r.table().contains("| criticalkv | f32 | 25% |"), r.table());
        assertTrue(r.table().contains("| criticalkv - snapkv | f32 | 25% |"), r.table());
        for (Path p : r.writePlots(dir)) {
            BufferedImage img = ImageIO.read(p.toFile());
            assertNotNull(img, p + " is a readable PNG");
            assertEquals(1100, img.getWidth());   // room for the legend beside the plot
        }
    }

    @Test
    void halfPrecisionStoresAddTheQuantisationAloneAndEveryPolicyOnThem() {
        FidelityConfig cfg = new FidelityConfig(2, 16, 64, 128, 8, List.of(0.25, 1.0), false,
                List.of("snapkv", "criticalkv"), 8, "java", WindowPooling.MAX, 7,
                List.of(KvDtypes.F32, KvDtypes.both(io.kvslab.DType.F16), KvDtypes.both(io.kvslab.DType.BF16)));
        FidelityReport r = FidelityEval.run(SharedModels.bin(), EvalTextSet.load(), cfg, null);
        assertEquals(2 * 2 + 2 * (1 + 2 * 2), r.results().size(), "f32: 2 policies x 2 budgets; f16, bf16: the "
                + "full cache and 2 x 2");
        BudgetResult f16 = r.result(FidelityEval.FULL, "f16", "100%");
        BudgetResult bf16 = r.result(FidelityEval.FULL, "bf16", "100%");
        // half the bytes of the f32 store, and a small but real change of the logits; bf16 (8-bit mantissa) more
        assertEquals(0.5, f16.kvBytesFraction(), 1e-12);
        assertEquals(0.5, bf16.kvBytesFraction(), 1e-12);
        assertTrue(f16.meanKl() > 0 && f16.meanKl() < bf16.meanKl() && bf16.meanKl() < 0.01,
                f16.meanKl() + " " + bf16.meanKl());
        // keeping every row on f16 is the quantisation alone
        assertEquals(f16.meanKl(), r.result("snapkv", "f16", "100%").meanKl(), 1e-12);
        // eviction and quantisation together: half the bytes of the same policy on f32
        BudgetResult both = r.result("snapkv", "f16", "25%");
        assertEquals(r.result("snapkv", "25%").kvBytes() / 2, both.kvBytes(), 1e-9);
        assertTrue(Double.isNaN(both.meanPerturbation()), "the perturbation is measured on f32 rows only");
        assertEquals(3 * 2, r.differences().size(), "criticalkv - snapkv per dtype and budget");
        assertTrue(r.table().contains("| snapkv | bf16 | 25% |"));
    }

    @Test
    void aLowPrecisionModeAddsItsWholeCacheRowsAgainstTheReferenceAndTheExactPath() {
        // stories260K's head dim 8: one q8_0 group per row, so both integer paths apply
        for (io.kvslab.Attention.QueryPrecision mode : List.of(io.kvslab.Attention.QueryPrecision.Q8_0,
                io.kvslab.Attention.QueryPrecision.INT8)) {
            FidelityConfig cfg = new FidelityConfig(2, 16, 64, 128, 8, List.of(0.25), false, List.of("snapkv"), 8,
                    "native", WindowPooling.MAX, 7, List.of(KvDtypes.F32, KvDtypes.both(io.kvslab.DType.Q8_0)), mode);
            FidelityReport r = FidelityEval.run(SharedModels.bin(), EvalTextSet.load(), cfg, null);
            String low = mode == io.kvslab.Attention.QueryPrecision.Q8_0 ? "q8_0+iq" : "q8_0+iq+iv";
            BudgetResult exact = r.result(FidelityEval.FULL, "q8_0", "100%");
            BudgetResult vsRef = r.result(FidelityEval.FULL, low, "100%");
            BudgetResult vsExact = r.result(FidelityEval.FULL, low + " vs q8_0", "100%");
            assertNotNull(vsRef, r.table());
            assertNotNull(vsExact, r.table());
            assertEquals(1 + 1 + 1 + 2, r.results().size(), "snapkv on f32 and q8_0, the q8_0 cache, the mode's two");
            assertEquals(exact.kvBytesFraction(), vsRef.kvBytesFraction(), 1e-12, "the same store");
            assertEquals(1.0, vsExact.kvBytesFraction(), 1e-12);
            assertTrue(vsExact.meanKl() > 0, mode + " changes the logits at head dim 8 (the path applies)");
            assertTrue(vsExact.meanKl() < 0.05, mode + ": " + vsExact.meanKl());
            assertEquals(exact.pplCompressed(), vsExact.pplFull(), 1e-9, "compared with the exact q8_0 run");
            assertEquals(1, r.differences().stream().filter(d -> d.dtype().equals(low)).count(),
                    "the mode minus the exact path, paired over the texts");
            assertTrue(r.table().contains("| " + low + " vs q8_0 |"), r.table());
            assertTrue(r.toJson().contains("\"queryPrecision\": \"" + mode.name().toLowerCase(java.util.Locale.ROOT)
                    + "\""), r.toJson());
        }
        assertThrows(IllegalArgumentException.class, () -> new FidelityConfig(2, 16, 64, 128, 8, List.of(0.25), false,
                List.of("snapkv"), 8, "java", WindowPooling.MAX, 7, List.of(KvDtypes.F32),
                io.kvslab.Attention.QueryPrecision.INT8));
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
