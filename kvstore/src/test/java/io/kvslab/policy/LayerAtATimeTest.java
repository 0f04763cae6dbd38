package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.IntFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The library's layer-at-a-time {@link Compressor}: it decides and applies exactly what a whole-sequence
 * {@link CompressionPolicy#select} + {@link Selection#applyTo} does, for every policy; every fixed-budget policy
 * keeps exactly its budget under decoding-time compression (PyramidKV used to keep 1,116 rows for 800); a layer
 * whose compression hits the memory limit is left exactly as it was, the layers before it stay compressed.
 */
class LayerAtATimeTest {
    private static final Fixtures.Shape SHAPE = new Fixtures.Shape(4, 4, 2, 8, 16);
    private static final int N = 150;
    private static final int W = 16;
    private static final int TOKENS_PER_BLOCK = 4;

    static Stream<String> policies() {
        return Policies.NAMES.stream();
    }

    static Stream<String> fixedBudgetPolicies() {
        return Policies.NAMES.stream().filter(n -> !Policies.byName(n).dynamicBudget());
    }

    private static CompressionPolicy policy(String name) {
        CompressionPolicy p = Policies.byName(name);
        if (p.scorer() instanceof WindowAttentionScorer w) {
            p = p.withScorer(w.withWindow(W));
        }
        return p;
    }

    @ParameterizedTest
    @MethodSource("policies")
    void layerAtATimeEqualsTheWholeSequenceSelection(String name) {
        CompressionPolicy p = policy(name);
        List<Budget> budgets = p.dynamicBudget() ? List.of(Budget.dynamic())
                : List.of(Budget.fraction(0.3), Budget.tokens(40), Budget.tokens(3));
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, name.hashCode());
        for (Budget budget : budgets) {
            try (KvStore store = KvStore.open(SHAPE.layout(TOKENS_PER_BLOCK)); Compressor c = new Compressor()) {
                Sequence whole = data.fill(store);
                Sequence layered = data.fill(store);
                Selection sel = p.select(data.context(whole), budget, c.workspace());
                sel.applyTo(whole);
                CompressionResult r = c.compress(layered, p, budget, data.inputs());
                for (int l = 0; l < SHAPE.layers(); l++) {
                    for (int h = 0; h < SHAPE.kvHeads(); h++) {
                        String at = name + " " + budget + " layer " + l + " head " + h;
                        assertArrayEquals(whole.positions(l, h), layered.positions(l, h), at);
                        assertArrayEquals(read(whole, l, h, true), read(layered, l, h, true), at);
                        assertArrayEquals(read(whole, l, h, false), read(layered, l, h, false), at);
                        assertEquals(N, r.rowsBefore()[l][h]);
                        assertEquals(layered.length(l, h), r.rowsAfter(l, h), at);
                    }
                }
                assertEquals(sel.keptRows(), r.keptRows());
                assertTrue(r.keptFraction() < 1.0, name + " " + budget + " evicted nothing");
                whole.close();
                layered.close();
                assertEquals(0, store.stats().liveBytes());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("fixedBudgetPolicies")
    void decodingTimeCompressionKeepsExactlyTheBudget(String name) {
        CompressionPolicy p = policy(name);
        int prompt = 60;
        int target = 32;
        int interval = 8;
        Fixtures.Data data = Fixtures.Data.random(SHAPE, prompt, W, 41);
        Random rnd = new Random(42);
        int d = SHAPE.headDim();
        int width = SHAPE.queryHeads() * d;
        RecentQueries recent = new RecentQueries(SHAPE.layers(), SHAPE.queryHeads(), d, W);
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int i = 0; i < W; i++) {
                recent.push(l, Arrays.copyOfRange(data.queries()[l], i * width, (i + 1) * width), prompt - W + i);
            }
        }
        List<float[]> wo = new ArrayList<>();
        for (int l = 0; l < SHAPE.layers(); l++) {
            wo.add(data.wo()[l]);
        }
        DecodingCompression dc = new DecodingCompression(p, interval, target);
        long budget = (long) SHAPE.layers() * SHAPE.kvHeads() * target;
        int compressions = 0;
        try (KvStore store = KvStore.open(SHAPE.layout(TOKENS_PER_BLOCK)); Compressor c = new Compressor()) {
            Sequence seq = data.fill(store);
            for (int step = 1; step <= 64; step++) {
                long pos = prompt + step - 1;
                for (int l = 0; l < SHAPE.layers(); l++) {
                    float[] k = gaussian(rnd, SHAPE.kvHeads() * d);
                    float[] v = gaussian(rnd, SHAPE.kvHeads() * d);
                    seq.append(l, k, v, pos);
                    recent.push(l, gaussian(rnd, width), pos);
                }
                CompressionResult r = dc.afterToken(seq, c, recent.inputs(wo));
                if (r != null) {
                    compressions++;
                    long kept = 0;
                    for (int l = 0; l < SHAPE.layers(); l++) {
                        for (int h = 0; h < SHAPE.kvHeads(); h++) {
                            kept += seq.length(l, h);
                            // the observation window (the last W decoded tokens) is never evicted
                            if (p.protection().observationWindow()) {
                                long[] positions = seq.positions(l, h);
                                assertEquals(pos - W + 1, positions[positions.length - W], name + " step " + step);
                            }
                        }
                    }
                    assertEquals(kept, r.keptRows());
                    assertEquals(budget, kept, name + " step " + step + ": kept rows over all (layer, KV head)");
                }
            }
            assertEquals(64 / interval, compressions, name);
            seq.close();
        }
    }

    @Test
    void aLayerThatHitsTheMemoryLimitIsLeftExactlyAsItWas() {
        KvLayout layout = SHAPE.layout(TOKENS_PER_BLOCK);
        long block = layout.blockBytes();
        // 4 sinks + the newest 7 rows: the recent rows start off a block boundary (143 = 35 x 4 + 3), so keep cannot
        // take whole blocks over and must rebuild the shared tables' blocks after the sinks' block in fresh ones
        // (with 10 kept rows the recent window is block-aligned and the keep needs no fresh block at all)
        int keep = 11;
        int keptBlocks = (keep + TOKENS_PER_BLOCK - 1) / TOKENS_PER_BLOCK;
        long filled = 2L * SHAPE.layers() * SHAPE.kvHeads() * ((N + TOKENS_PER_BLOCK - 1) / TOKENS_PER_BLOCK);
        // room for one head's rebuilt K and V (the tables are shared with the fork) but not for the layer's two
        long limit = (filled + 2L * keptBlocks + 1) * block;
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 43);
        CompressionPolicy p = Policies.streamingLlm();
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(block).withLimitBytes(limit));
             Compressor c = new Compressor()) {
            Sequence seq = data.fill(store);
            Sequence fork = seq.fork();
            long live = store.stats().liveBytes();
            float[][][] keysBefore = snapshot(seq, true);
            float[][][] valuesBefore = snapshot(seq, false);

            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> c.compress(seq, p, Budget.tokens(keep)));
            assertNotNull(e.getMessage());
            assertUnchanged(seq, keysBefore, valuesBefore, live, store);

            // the same for a selection applied directly
            Selection sel = p.select(data.context(seq), Budget.tokens(keep), c.workspace());
            assertThrows(MemoryLimitExceededException.class, () -> sel.applyTo(seq));
            assertUnchanged(seq, keysBefore, valuesBefore, live, store);

            // and for the layer-wide keep itself
            int[][] rows = sel.kept()[0];
            assertThrows(MemoryLimitExceededException.class, () -> seq.keep(0, rows));
            assertUnchanged(seq, keysBefore, valuesBefore, live, store);

            // once the fork is gone the tables are exclusive, compacted in place: no fresh blocks needed
            fork.close();
            CompressionResult r = c.compress(seq, p, Budget.tokens(keep));
            assertEquals((long) SHAPE.layers() * SHAPE.kvHeads() * keep, r.keptRows());
            seq.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void aCompressionThatFailsInALaterLayerLeavesEarlierLayersCompressedAndTheRestAsTheyWere() {
        KvLayout layout = SHAPE.layout(TOKENS_PER_BLOCK);
        long block = layout.blockBytes();
        // 11, not 10: a block-aligned StreamingLLM keep takes whole blocks over and needs no fresh block
        int keep = 11;
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 46);
        CompressionPolicy p = Policies.streamingLlm();
        // measure what one layer's rebuild takes (the tables are shared with a fork, so it needs fresh blocks)
        long shared;
        long layerFresh;
        try (KvStore probe = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(block));
             Compressor c = new Compressor()) {
            Sequence seq = data.fill(probe);
            Sequence fork = seq.fork();
            shared = probe.stats().liveBytes();
            seq.keep(0, p.select(data.context(seq), Budget.tokens(keep), c.workspace()).kept()[0]);
            layerFresh = probe.stats().liveBytes() - shared;
            fork.close();
            seq.close();
        }
        assertTrue(layerFresh > 0);
        // room for layer 0's rebuilt tables but not for layer 1's as well
        long limit = shared + 2 * layerFresh - block;
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(block).withLimitBytes(limit));
             Compressor c = new Compressor()) {
            Sequence seq = data.fill(store);
            Sequence fork = seq.fork();
            float[][][] keysBefore = snapshot(seq, true);
            float[][][] valuesBefore = snapshot(seq, false);
            Selection sel = p.select(data.context(seq), Budget.tokens(keep), c.workspace());
            long live = store.stats().liveBytes();

            assertThrows(MemoryLimitExceededException.class, () -> c.compress(seq, p, Budget.tokens(keep)));
            long after = store.stats().liveBytes();
            assertEquals(live + layerFresh, after, "layer 0's fresh blocks, nothing of the failed layer 1");
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                // layer 0 holds exactly the selection's rows, read from the rows it had before
                int[] kept = sel.kept(0, h);
                assertEquals(kept.length, seq.length(0, h));
                float[] k = read(seq, 0, h, true);
                float[] v = read(seq, 0, h, false);
                int d = SHAPE.headDim();
                for (int i = 0; i < kept.length; i++) {
                    assertArrayEquals(Arrays.copyOfRange(keysBefore[0][h], kept[i] * d, (kept[i] + 1) * d),
                            Arrays.copyOfRange(k, i * d, (i + 1) * d), "layer 0 head " + h + " row " + i);
                    assertArrayEquals(Arrays.copyOfRange(valuesBefore[0][h], kept[i] * d, (kept[i] + 1) * d),
                            Arrays.copyOfRange(v, i * d, (i + 1) * d), "layer 0 head " + h + " row " + i);
                }
                for (int l = 1; l < SHAPE.layers(); l++) {
                    assertEquals(N, seq.length(l, h), "layer " + l + " head " + h);
                    assertArrayEquals(keysBefore[l][h], read(seq, l, h, true));
                    assertArrayEquals(valuesBefore[l][h], read(seq, l, h, false));
                }
            }
            // the fork never changes
            for (int l = 0; l < SHAPE.layers(); l++) {
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    assertArrayEquals(keysBefore[l][h], read(fork, l, h, true));
                }
            }
            // running the compression again once memory is back finishes the job (layer 0 keeps all it has left)
            fork.close();
            CompressionResult r = c.compress(seq, p, Budget.tokens(keep));
            assertEquals((long) SHAPE.layers() * SHAPE.kvHeads() * keep, r.keptRows());
            seq.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void aLayerWideKeepWithABadHeadChangesNoHead() {
        KvLayout layout = SHAPE.layout(TOKENS_PER_BLOCK);
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 44);
        try (KvStore store = KvStore.open(layout)) {
            Sequence seq = data.fill(store);
            long live = store.stats().liveBytes();
            float[][][] keys = snapshot(seq, true);
            float[][][] values = snapshot(seq, false);
            int[] good = {0, 5, 9};
            for (int[][] bad : new int[][][] {{good, {3, 2}}, {good, {0, N}}, {good, null}, {good}, null}) {
                assertThrows(io.kvslab.KvArgumentException.class, () -> seq.keep(1, bad));
                assertUnchanged(seq, keys, values, live, store);
            }
            assertThrows(io.kvslab.KvArgumentException.class, () -> seq.keep(SHAPE.layers(), new int[][] {good, good}));
            seq.keep(1, new int[][] {good, java.util.stream.IntStream.range(0, N).toArray()});
            assertArrayEquals(new long[] {0, 5, 9}, seq.positions(1, 0));
            assertEquals(N, seq.length(1, 1));
            seq.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void missingInputsFailBeforeAnyLayerChanges() {
        Fixtures.Data data = Fixtures.Data.random(SHAPE, N, W, 45);
        try (KvStore store = KvStore.open(SHAPE.layout(TOKENS_PER_BLOCK)); Compressor c = new Compressor()) {
            Sequence seq = data.fill(store);
            long live = store.stats().liveBytes();
            float[][][] keys = snapshot(seq, true);
            float[][][] values = snapshot(seq, false);
            IntFunction<LayerInputs> all = data.inputs();
            // the last layer's window is missing: SnapKV fails before compressing layer 0
            List<LayerInputs> windows = new ArrayList<>();
            for (int l = 0; l < SHAPE.layers() - 1; l++) {
                windows.add(all.apply(l));
            }
            KvArgumentException e = assertThrows(KvArgumentException.class,
                    () -> c.compress(seq, policy("snapkv"), Budget.fraction(0.5),
                            l -> l < windows.size() ? windows.get(l) : null));
            assertTrue(e.getMessage().contains("layer " + (SHAPE.layers() - 1)), e.getMessage());
            assertUnchanged(seq, keys, values, live, store);
            // CriticalKV without W_o, a dynamic budget for a fixed policy, no inputs at all
            assertThrows(KvArgumentException.class, () -> c.compress(seq, policy("criticalkv"), Budget.fraction(0.5),
                    l -> all.apply(l).withOutputProjection(null)));
            assertThrows(KvArgumentException.class, () -> c.compress(seq, policy("snapkv"), Budget.dynamic(), all));
            assertThrows(KvArgumentException.class, () -> c.compress(seq, policy("snapkv"), Budget.fraction(0.5)));
            assertThrows(KvArgumentException.class, () -> c.compress(seq, null, Budget.fraction(0.5)));
            assertUnchanged(seq, keys, values, live, store);
            // a policy that reads no inputs never asks for them (a caller may build them lazily and expensively),
            // and gives what it gives without them
            try (Sequence fork = seq.fork()) {
                long keptWithout = c.compress(fork, policy("knorm"), Budget.fraction(0.5)).keptRows();
                assertEquals(keptWithout, c.compress(seq, policy("knorm"), Budget.fraction(0.5), l -> {
                    throw new AssertionError("knorm asked for layer " + l + "'s inputs");
                }).keptRows());
                for (int l = 0; l < SHAPE.layers(); l++) {
                    for (int h = 0; h < SHAPE.kvHeads(); h++) {
                        assertArrayEquals(fork.positions(l, h), seq.positions(l, h), "layer " + l + " head " + h);
                    }
                }
            }
            seq.close();
        }
    }

    private static void assertUnchanged(Sequence seq, float[][][] keys, float[][][] values, long live, KvStore store) {
        assertEquals(live, store.stats().liveBytes(), "live bytes");
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                assertEquals(N, seq.length(l, h), "layer " + l + " head " + h);
                assertArrayEquals(keys[l][h], read(seq, l, h, true));
                assertArrayEquals(values[l][h], read(seq, l, h, false));
            }
        }
    }

    private static float[][][] snapshot(Sequence seq, boolean keys) {
        float[][][] out = new float[SHAPE.layers()][SHAPE.kvHeads()][];
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int h = 0; h < SHAPE.kvHeads(); h++) {
                out[l][h] = read(seq, l, h, keys);
            }
        }
        return out;
    }

    private static float[] read(Sequence seq, int l, int h, boolean keys) {
        float[] out = new float[seq.length(l, h) * SHAPE.headDim()];
        if (keys) {
            seq.readKeys(l, h, out);
        } else {
            seq.readValues(l, h, out);
        }
        return out;
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
