package io.kvslab.bench.footprint;

import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.bench.geometry.SlabMath;

import io.kvslab.bench.report.Json;

import io.kvslab.DType;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.KvLayout;
import io.kvslab.StoreConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FootprintTest {
    private static final ModelGeometry SMALL = new ModelGeometry("small", 3, 4, 2, 16);

    @Test
    void theoreticalBytesOfLlama8bMatchTheTextbookFormula() {
        ModelGeometry llama = ModelGeometry.parse("llama-3.1-8b");
        KvLayout layout = llama.layout(DType.F16, 32);
        // 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB per token; 4096 tokens = 512 MiB.
        assertEquals(131_072L, llama.bytesPerToken(DType.F16));
        FootprintModel.Estimate e = FootprintModel.dense(layout, StoreConfig.defaults(), 4096);
        assertEquals(512L << 20, e.theoreticalBytes());
        assertEquals(512L << 20, e.liveBytes());         // 4096 is a multiple of 32 tokens per block
        assertEquals(512L << 20, e.reservedBytes());     // and of the 16 MiB slabs (2048 blocks of 8 KiB)
        // A ragged length: 4097 tokens need one more block per (layer, KV head) and K/V: 512 more blocks.
        FootprintModel.Estimate r = FootprintModel.dense(layout, StoreConfig.defaults(), 4097);
        assertEquals((512L << 20) + 131_072L, r.theoreticalBytes());
        assertEquals((512L << 20) + 512L * 8192, r.liveBytes());
        assertEquals((512L << 20) + (16L << 20), r.reservedBytes());
    }

    @Test
    void presetsAndCustomGeometriesParse() {
        assertEquals(80, ModelGeometry.parse("LLAMA-3.1-70B").layers());
        assertEquals(4, ModelGeometry.parse("qwen2.5-7b").kvHeads());
        assertEquals(8, ModelGeometry.parse("stories260K").headDim());
        ModelGeometry c = ModelGeometry.parse("2:6:3:64");
        assertEquals(List.of(2, 6, 3, 64), List.of(c.layers(), c.queryHeads(), c.kvHeads(), c.headDim()));
        assertThrows(IllegalArgumentException.class, () -> ModelGeometry.parse("gpt-9"));
        assertThrows(IllegalArgumentException.class, () -> ModelGeometry.parse("2:6:4:64"));   // 6 % 4 != 0
        assertThrows(IllegalArgumentException.class, () -> ModelGeometry.parse("2:6:x:64"));
    }

    /**
     * The real store, filled and compressed, holds exactly the blocks the analytic model predicts, and after
     * compaction it reserves exactly the fewest whole slabs that hold them.
     */
    @Test
    void measuredRowsAgreeWithTheAnalyticModel() {
        long slab = 64 * 1024;
        List<ModelGeometry> models = List.of(SMALL);
        List<Integer> contexts = List.of(1, 100, 1000, 5003);
        List<KvDtypes> dtypes = List.of(KvDtypes.F32, KvDtypes.both(DType.F16), KvDtypes.both(DType.BF16));
        List<FootprintPolicy> policies = List.of(FootprintPolicy.full(), FootprintPolicy.parse("streamingllm", 0.3, 4));
        FootprintRunner runner = new FootprintRunner(new FootprintRunner.Config(models, contexts, dtypes, policies,
                1L << 30, slab, 8, 7));
        List<FootprintRow> rows = runner.run(r -> { });
        assertEquals(contexts.size() * dtypes.size() * policies.size(), rows.size());
        for (FootprintRow m : rows) {
            assertTrue(m.measured(), m.toString());
            KvDtypes dt = m.dtype();
            FootprintPolicy p = m.policy().equals("full") ? policies.get(0) : policies.get(1);
            FootprintRow a = runner.analytic(SMALL, m.contextTokens(), dt, p);
            assertFalse(a.measured());
            assertEquals(a.keptTokensPerHead(), m.keptTokensPerHead(), 0.0, m.toString());
            assertEquals(a.theoreticalBytes(), m.theoreticalBytes(), m.toString());
            assertEquals(a.liveBytes(), m.liveBytes(), m.toString());
            assertEquals(a.reservedBytes(), m.reservedBytes(), m + " vs " + a);
            assertTrue(m.heldReservedBytes() >= m.reservedBytes(), m.toString());
            // Block slack: at most one partial block per (layer, KV head) and K/V.
            KvLayout layout = SMALL.layout(dt.key(), 8);
            long slack = 2L * SMALL.layers() * SMALL.kvHeads() * (layout.tokensPerBlock() - 1) * layout.rowBytes();
            assertTrue(m.liveBytes() - m.theoreticalBytes() >= 0 && m.liveBytes() - m.theoreticalBytes() <= slack,
                    m.toString());
        }
        // Hand check of one row: full, 1000 tokens, f16: 2 x 3 x 2 x 16 x 2 x 1000 = 384,000 bytes.
        FootprintRow f16 = rows.stream().filter(r -> r.contextTokens() == 1000 && r.dtype().equals(KvDtypes.both(DType.F16))
                && r.policy().equals("full")).findFirst().orElseThrow();
        assertEquals(384_000, f16.theoreticalBytes());
        assertEquals(2L * 3 * 2 * 125 * (8 * 16 * 2), f16.liveBytes());   // 125 blocks of 8 rows per head
        // StreamingLLM keeps floor(0.3 x 5003) = 1500 rows per head.
        FootprintRow w = rows.stream().filter(r -> r.contextTokens() == 5003 && r.policy().startsWith("streamingllm"))
                .findFirst().orElseThrow();
        assertEquals(1500.0, w.keptTokensPerHead());
    }

    /**
     * Policies of the policy package on real fills: uniform ones keep exactly the analytic rows and blocks; Ada-KV
     * keeps the same total (blocks within one per head); PyramidKV at most the uniform total and at most
     * layers - 1 rows per head less; DBudgetKV at most the dense cache.
     */
    @Test
    void libraryPoliciesAgreeWithTheirAnalyticRows() {
        long slab = 64 * 1024;
        List<String> names = List.of("streamingllm", "knorm", "snapkv", "criticalkv", "adakv", "pyramidkv",
                "dbudgetkv");
        List<FootprintPolicy> policies = new ArrayList<>();
        for (String n : names) {
            policies.add(FootprintPolicy.parse(n, 0.3, 4));
        }
        FootprintRunner runner = new FootprintRunner(new FootprintRunner.Config(List.of(SMALL),
                List.of(100, 1000, 3001), List.of(KvDtypes.both(DType.F16)), policies, 1L << 30, slab, 8, 3));
        KvLayout layout = SMALL.layout(DType.F16, 8);
        long heads = (long) SMALL.layers() * SMALL.kvHeads();
        for (FootprintRow m : runner.run(r -> { })) {
            assertTrue(m.measured(), m.toString());
            FootprintPolicy p = policies.get(names.indexOf(m.policy().replaceAll("[0-9]+%$", "")));
            FootprintRow a = runner.analytic(SMALL, m.contextTokens(), KvDtypes.both(DType.F16), p);
            long rowsMeasured = m.theoreticalBytes() / (2 * layout.rowBytes());
            long rowsAnalytic = a.theoreticalBytes() / (2 * layout.rowBytes());
            switch (a.mode()) {
                case "analytic" -> {
                    assertEquals(a.theoreticalBytes(), m.theoreticalBytes(), m.toString());
                    assertEquals(a.liveBytes(), m.liveBytes(), m.toString());
                }
                case "estimate" -> {
                    if (m.policy().startsWith("adakv")) {
                        assertEquals(rowsAnalytic, rowsMeasured, m.toString());
                    } else {
                        assertTrue(rowsMeasured <= rowsAnalytic
                                && rowsMeasured >= rowsAnalytic - (SMALL.layers() - 1) * heads, m + " vs " + a);
                    }
                    assertTrue(Math.abs(m.liveBytes() - a.liveBytes()) <= 2 * heads * layout.blockBytes(),
                            m + " vs " + a);
                }
                case "dense bound" -> assertTrue(rowsMeasured <= rowsAnalytic && rowsMeasured >= 1, m.toString());
                default -> throw new AssertionError(a.mode());
            }
            if (m.contextTokens() == 3001 && !m.policy().equals("dbudgetkv")) {
                assertTrue(rowsMeasured < 3001L * heads / 2, m + " did not compress");
            }
        }
        // SnapKV's budget never drops below its 32-row observation window: 100 tokens keep 32 rows, not 30.
        assertEquals(32, policies.get(2).keptRows(layout, 0, 0, 100));
        assertEquals(900, policies.get(2).keptRows(layout, 0, 0, 3001));
    }

    @Test
    void rowsWhoseDenseFillExceedsTheLimitAreAnalytic() {
        long slab = 64 * 1024;
        // 3 x 2 x 2 x 16 x 4 bytes = 768 bytes per token (f32); a 1 MiB limit holds 1365 tokens at most.
        FootprintRunner runner = new FootprintRunner(new FootprintRunner.Config(List.of(SMALL),
                List.of(1024, 4096), List.of(KvDtypes.F32), List.of(FootprintPolicy.full(), FootprintPolicy.parse("streamingllm", 0.1, 4)),
                1L << 20, slab, 8, 1));
        List<FootprintRow> rows = runner.run(r -> { });
        assertTrue(rows.get(0).measured() && rows.get(1).measured());
        assertFalse(rows.get(2).measured() || rows.get(3).measured());
        assertEquals(4096L * 768, rows.get(2).theoreticalBytes());
        assertEquals(409L * 768, rows.get(3).theoreticalBytes());
    }

    @Test
    void aLimitBelowOneSlabStillHoldsTheBlocksThatFit() {
        KvLayout layout = SMALL.layout(DType.F32, 8);   // 512-byte blocks
        StoreConfig cfg = new StoreConfig(10_000, 64 * 1024);
        assertTrue(SlabMath.fitsUnderLimit(layout, cfg, 19));   // 19 x 512 = 9728 <= 10000
        assertFalse(SlabMath.fitsUnderLimit(layout, cfg, 20));
        assertTrue(SlabMath.fitsUnderLimit(layout, new StoreConfig(3L << 20, 1 << 20), 6144));
        assertFalse(SlabMath.fitsUnderLimit(layout, new StoreConfig(3L << 20, 1 << 20), 6145));
    }

    @Test
    void plotIsAPngOfTheRequestedSize(@TempDir Path dir) throws Exception {
        List<FootprintRow> rows = new ArrayList<>();
        FootprintRunner runner = new FootprintRunner(new FootprintRunner.Config(List.of(SMALL),
                List.of(64, 4096, 1 << 20), List.of(KvDtypes.both(DType.F16)), List.of(FootprintPolicy.full()), 1L << 30,
                1 << 20, 32, 1));
        rows.add(runner.measure(SMALL, 64, KvDtypes.both(DType.F16), FootprintPolicy.full()));
        rows.add(runner.analytic(SMALL, 4096, KvDtypes.both(DType.F16), FootprintPolicy.full()));
        rows.add(runner.analytic(SMALL, 1 << 20, KvDtypes.both(DType.F16), FootprintPolicy.full()));
        Path png = dir.resolve("sub/footprint.png");
        FootprintPlot.write(rows, 1L << 30, png);
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img, "not a readable image");
        assertEquals(1200, img.getWidth());
        assertEquals(720, img.getHeight());
    }

    @Test
    void jsonEscapesAndOrdersFields() {
        String s = Json.object().put("a", "x\"y\\z\n").put("b", List.of(1, 2.5, true)).put("c", Double.NaN)
                .put("d", Json.object()).toString();
        // Jackson's pretty printer (report.Json): arrays of scalars on one line, an empty object as "{ }"
        assertEquals("{\n  \"a\": \"x\\\"y\\\\z\\n\",\n  \"b\": [ 1, 2.5, true ],\n"
                + "  \"c\": null,\n  \"d\": { }\n}", s);
    }

    @Test
    void mixedKvTypesCountEachSideInItsOwnBytesAndSlabs() {
        // stories260K (5 layers, 4 KV heads, head dim 8), K q8_0 (10 bytes/row) and V q4_0 (6 bytes/row), 32 rows
        // per block: 40 rows per head need 2 K blocks of 320 bytes and 2 V blocks of 192 bytes.
        KvLayout layout = new KvLayout(5, 8, 4, 8, DType.Q8_0, DType.Q4_0, 32);
        StoreConfig config = StoreConfig.defaults().withSlabBytes(1920);
        int[][] rows = new int[5][4];
        for (int[] l : rows) {
            java.util.Arrays.fill(l, 40);
        }
        FootprintModel.Estimate e = FootprintModel.estimate(layout, config, rows);
        assertEquals(800, e.keptRows());
        assertEquals(800L * (10 + 6), e.theoreticalBytes());
        assertEquals(40L * 320 + 40L * 192, e.liveBytes());
        // 40 K blocks in slabs of 6 (7 slabs of 1920), 40 V blocks in slabs of 10 (4 slabs of 1920)
        assertEquals(7L * 1920 + 4L * 1920, e.reservedBytes());
        // measured against a real store: live bytes are the same
        try (io.kvslab.KvStore store = io.kvslab.KvStore.open(layout, config);
             io.kvslab.Sequence s = store.newSequence()) {
            float[] k = new float[40 * 4 * 8];
            long[] pos = new long[40];
            for (int i = 0; i < 40; i++) {
                pos[i] = i;
            }
            for (int l = 0; l < 5; l++) {
                s.appendChunk(l, k, k, pos);
            }
            assertEquals(e.liveBytes(), store.stats().liveBytes());
            assertEquals(e.reservedBytes(), store.stats().reservedBytes());
        }
    }

    @Test
    void aRowOfKq8VQ4CountsEachSideInItsOwnBytes() {
        // head dim 16: q8_0 = one group of 16 bytes + a 2-byte f16 scale = 18 bytes/row, q4_0 = 8 + 2 = 10 bytes/row
        FootprintRunner runner = new FootprintRunner(new FootprintRunner.Config(List.of(SMALL), List.of(1001),
                List.of(new KvDtypes(DType.Q8_0, DType.Q4_0)), List.of(FootprintPolicy.full()), 1L << 30, 64 * 1024,
                8, 5));
        List<FootprintRow> rows = runner.run(r -> { });
        assertEquals(1, rows.size());
        FootprintRow r = rows.getFirst();
        assertTrue(r.measured(), r.toString());
        assertEquals(18 + 10, r.rowPairBytes());
        assertEquals("q8_0/q4_0", r.dtype().label());
        // 3 layers x 2 KV heads x 1001 tokens x 28 bytes
        assertEquals(3L * 2 * 1001 * 28, r.theoreticalBytes());
        // 1001 rows = 126 blocks of 8 per (layer, KV head): 126 K blocks of 144 bytes and 126 V blocks of 80
        assertEquals(3L * 2 * 126 * (8 * 18 + 8 * 10), r.liveBytes());
        // 756 K blocks, 455 per 64 KiB slab: 2 slabs; 756 V blocks, 819 per slab: 1 slab (slabs hold whole blocks)
        assertEquals(2L * 455 * 144 + 819L * 80, r.reservedBytes());
        assertEquals(r.liveBytes(), runner.analytic(SMALL, 1001, r.dtype(), FootprintPolicy.full()).liveBytes());
        assertTrue(FootprintReport.line(r).contains("q8_0/q4_0     28"), FootprintReport.line(r));
    }
}
