package io.kvslab.bench.jmh;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The FLOP counts and ratios {@code bench prefill} and {@code bench policy} print, against hand-computed values. */
class PrefillRatiosTest {
    @Test
    void causalPrefillFlopsCountEveryQueryKeyPairOnce() {
        // 2 products (scores, weighted values) x 2 FLOPs x 32 heads x 128 dims x 4096*4097/2 visible pairs
        assertEquals(137_472_507_904.0, PrefillBench.flops(4096));
        assertEquals(4.0 * 32 * 128, PrefillBench.flops(1)); // one token sees itself
        assertEquals(2.0 * 512 * 4096 * 4096, SgemmProbeBench.FLOPS);
    }

    @Test
    void prefillRatioIsGflopsOverTheRunsSgemm() {
        PrefillBenchRunner.Row r = new PrefillBenchRunner.Row(4096, 1000, 137.5, 50);
        assertEquals(2.75, r.ratio(), 1e-12);
        String table = new PrefillBenchRunner.Report(false, 40, 60, List.of(r)).table();
        assertTrue(table.contains("40.0 before, 60.0 after") && table.contains("2.750"), table);
    }

    @Test
    void fullLayerAddsProjectionsAndMlpAtTheSgemmRate() {
        // 436,207,616 FLOPs per token (Q, K, V, O, gate, up, down of Llama-3-8B) x 4096 tokens at 20 GFLOP/s
        // = 89,335.32 ms, plus the measured 1,000 ms of attention
        PolicyCostBenchRunner.Row r = new PolicyCostBenchRunner.Row(4096, 4516.766, 100, 1000, 20, 903.3532, 50);
        assertEquals(436_207_616.0, PolicyCostBenchRunner.LINEAR_FLOPS_PER_TOKEN);
        assertEquals(90_335.3197568, r.fullLayerMs(), 1e-6);
        assertEquals(4.516766, r.compressRatio(), 1e-12);
        assertEquals(0.05, r.compressOverLayer(), 1e-6);
        assertEquals(0.9033532, r.compressL2Ratio(), 1e-12);
        assertEquals(0.01, r.compressL2OverLayer(), 1e-6);
    }
}
