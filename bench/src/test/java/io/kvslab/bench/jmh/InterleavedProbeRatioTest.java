package io.kvslab.bench.jmh;

import io.kvslab.DType;
import io.kvslab.bench.report.Stats;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The statistics {@code bench decode-vs-probe} prints, against hand-computed values, and a small real run. */
class InterleavedProbeRatioTest {
    @Test
    void ratioIsTheMedianProbeOverTheMedianDecodeNotTheMedianOfPairs() {
        // probe ms/GiB 60, 70, 80 (median 70); decode 100, 80, 70 (median 80): ratio of medians 0.875, while the
        // pairs give 0.6, 0.875, 1.142857...
        InterleavedProbeRatio.Row r = new InterleavedProbeRatio.Row("F16", 32, 32768, 2, 8, new double[] {60, 70, 80},
                new double[] {100, 80, 70});
        assertEquals(0.875, r.ratioOfMedians(), 1e-12);
        assertArrayEquals(new double[] {0.6, 0.875, 80.0 / 70}, r.pairRatios(), 1e-12);
        // 2^30 bytes in 70 ms = 1,073,741,824 / 70,000,000 = 15.3391689... GB/s
        assertEquals(15.339168914285714, InterleavedProbeRatio.Row.gbps(70), 1e-9);
    }

    @Test
    void medianAndQuartilesInterpolateBetweenSortedValues() {
        assertEquals(2.5, Stats.median(new double[] {4, 1, 3, 2}), 1e-12);
        double[] sorted = {1, 2, 3, 4, 5};
        assertEquals(2, Stats.percentile(sorted, 0.25), 1e-12);
        assertEquals(4, Stats.percentile(sorted, 0.75), 1e-12);
        assertEquals(1.75, Stats.percentile(new double[] {1, 2, 3, 4}, 0.25), 1e-12);
        assertEquals(7, Stats.median(new double[] {7}), 1e-12);
    }

    @Test
    void aSmallRunMeasuresEveryDtypeEveryRoundAndFreesItsStores() {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        // two layers per type: a sample's steps go round them
        InterleavedProbeRatio.Report rep = InterleavedProbeRatio.run(2048, List.of(DType.F16, DType.F32), List.of(32), 1, 2,
                InterleavedProbeRatio.APPEND_TOKENS, 16, 3,
                1, new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEquals(2, rep.rows().size());
        // 16 MiB probe; a 2048-token layer reads 2 x 2048 x 8 heads x 256 B = 8 MiB in f16, 16 MiB in f32
        assertEquals(2, rep.rows().get(0).stepsPerSample());
        assertEquals(1, rep.rows().get(1).stepsPerSample());
        for (InterleavedProbeRatio.Row r : rep.rows()) {
            assertEquals(3, r.probeMsPerGiB().length);
            for (int i = 0; i < 3; i++) {
                assertTrue(r.probeMsPerGiB()[i] > 0 && r.decodeMsPerGiB()[i] > 0, r.toString());
            }
            assertTrue(Double.isFinite(r.ratioOfMedians()) && r.ratioOfMedians() > 0);
        }
        String out = progress.toString(StandardCharsets.UTF_8);
        assertEquals(4, out.lines().filter(l -> l.startsWith("round") || l.startsWith("warm-up")).count(), out);
        assertEquals(4, out.lines().filter(l -> l.startsWith("filling")).count(), out);
        assertTrue(rep.table().contains("F32") && rep.json().contains("\"ratioOfMedians\""), rep.table());
    }

    @Test
    void severalBlockSizesAreMeasuredInTheSameRoundsAndNamed() {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        InterleavedProbeRatio.Report rep = InterleavedProbeRatio.run(2048, List.of(DType.F16), List.of(32, 256), 1, 1,
                InterleavedProbeRatio.APPEND_TOKENS, 8, 2, 0, new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEquals(List.of(32, 256), rep.rows().stream().map(InterleavedProbeRatio.Row::tokensPerBlock).toList());
        String out = progress.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("F16/32 ") && out.contains("F16/256 "), out);
        assertTrue(out.contains("256 per block"), out);
        assertTrue(rep.json().contains("\"tokensPerBlock\":256,"), rep.json());
    }

    @Test
    void storesFilledTokenByTokenAreMeasuredAndNamed() {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        InterleavedProbeRatio.Report rep = InterleavedProbeRatio.run(1024, List.of(DType.F16), List.of(32), 1, 1, 1, 8, 2, 0,
                new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEquals(1, rep.appendTokens());
        assertEquals(2, rep.rows().get(0).probeMsPerGiB().length);
        assertTrue(rep.table().contains("token by token"), rep.table());
        assertTrue(rep.json().contains("\"appendTokens\":1,"), rep.json());
        assertTrue(progress.toString(StandardCharsets.UTF_8).contains("1 per append"), progress.toString());
    }
}
