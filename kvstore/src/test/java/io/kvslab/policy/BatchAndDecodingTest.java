package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Batches get per-sequence budgets (no cross-sequence leakage); decoding-time compression every N steps. */
class BatchAndDecodingTest {
    private static final Fixtures.Shape SHAPE = Fixtures.Shape.small();
    private static final int W = 8;

    private static CompressionPolicy criticalAda() {
        return Policies.criticalAdaKv(WindowAttentionScorer.authors().withWindow(W), 0.2, CriticalSelector.defaults());
    }

    @Test
    void eachSequenceOfABatchIsCompressedAsIfAlone() {
        Fixtures.Data a = Fixtures.Data.random(SHAPE, 120, W, 31);
        Fixtures.Data b = Fixtures.Data.random(SHAPE, 60, W, 32);
        CompressionPolicy p = criticalAda();
        try (KvStore store = KvStore.open(SHAPE.layout(16)); Compressor c = new Compressor()) {
            Sequence sa = a.fill(store);
            Sequence sb = b.fill(store);
            Selection aloneA = p.select(a.context(), Budget.fraction(0.25), c.workspace());
            Selection aloneB = p.select(b.context(), Budget.fraction(0.5), c.workspace());
            List<CompressionResult> batch = c.compressBatch(List.of(sa, sb), p, List.of(a.inputs(), b.inputs()),
                    List.of(Budget.fraction(0.25), Budget.fraction(0.5)));
            for (int l = 0; l < SHAPE.layers(); l++) {
                int totalA = 0;
                int totalB = 0;
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    // positions are the row indices 0..n-1, so the kept positions are the kept rows
                    assertArrayEquals(Arrays.stream(aloneA.kept(l, h)).asLongStream().toArray(), sa.positions(l, h));
                    assertArrayEquals(Arrays.stream(aloneB.kept(l, h)).asLongStream().toArray(), sb.positions(l, h));
                    assertEquals(batch.get(0).rowsAfter(l, h), sa.length(l, h));
                    assertEquals(batch.get(1).rowsAfter(l, h), sb.length(l, h));
                    totalA += sa.length(l, h);
                    totalB += sb.length(l, h);
                }
                // each sequence's budget comes from its own length: 25% of 120 and 50% of 60 per head
                assertEquals(SHAPE.kvHeads() * 30, totalA);
                assertEquals(SHAPE.kvHeads() * 30, totalB);
            }
            sa.close();
            sb.close();
        }
    }

    @Test
    void aBadEntryInABatchLeavesEverySequenceUnchanged() {
        Fixtures.Data a = Fixtures.Data.random(SHAPE, 64, W, 33);
        Fixtures.Data b = Fixtures.Data.random(SHAPE, 64, W, 34);
        CompressionPolicy p = Policies.snapKv(WindowAttentionScorer.authors().withWindow(W));
        try (KvStore store = KvStore.open(SHAPE.layout(16)); Compressor c = new Compressor()) {
            Sequence sa = a.fill(store);
            Sequence sb = b.fill(store);
            long live = store.stats().liveBytes();
            assertThrows(KvArgumentException.class, () -> c.compressBatch(List.of(sa, sb), p,
                    List.of(a.inputs(), b.inputs()), List.of(Budget.fraction(0.25), Budget.dynamic())));
            assertEquals(live, store.stats().liveBytes());
            assertEquals(64, sa.length(0, 0));
            // a stale selection (made before the sequence changed) is refused without touching it
            Selection stale = p.select(a.context(sa), Budget.fraction(0.5), c.workspace());
            float[] k = new float[SHAPE.kvHeads() * SHAPE.headDim()];
            for (int l = 0; l < SHAPE.layers(); l++) {
                sa.append(l, k, k, 64);
            }
            assertThrows(KvArgumentException.class, () -> stale.applyTo(sa));
            assertEquals(65, sa.length(2, 1));
            sa.close();
            sb.close();
        }
    }

    @Test
    void decodingCompressionRunsEveryIntervalDownToTheTarget() {
        int prompt = 40;
        int target = 32;
        int interval = 10;
        Fixtures.Data data = Fixtures.Data.random(SHAPE, prompt, W, 35);
        CompressionPolicy p = Policies.snapKv(WindowAttentionScorer.authors().withWindow(W));
        Random rnd = new Random(36);
        int d = SHAPE.headDim();
        RecentQueries recent = new RecentQueries(SHAPE.layers(), SHAPE.queryHeads(), d, p.windowQueries());
        for (int l = 0; l < SHAPE.layers(); l++) {
            int width = SHAPE.queryHeads() * d;
            for (int i = 0; i < W; i++) {
                recent.push(l, Arrays.copyOfRange(data.queries()[l], i * width, (i + 1) * width), prompt - W + i);
            }
        }
        List<float[]> wo = new ArrayList<>(Collections.nCopies(SHAPE.layers(), null));
        DecodingCompression dc = new DecodingCompression(p, interval, target);
        try (KvStore store = KvStore.open(SHAPE.layout(8)); Compressor c = new Compressor()) {
            Sequence seq = data.fill(store);
            for (int step = 1; step <= 35; step++) {
                long pos = prompt + step - 1;
                int before = seq.length(0, 0);
                for (int l = 0; l < SHAPE.layers(); l++) {
                    float[] k = new float[SHAPE.kvHeads() * d];
                    float[] v = new float[k.length];
                    float[] q = new float[SHAPE.queryHeads() * d];
                    for (int i = 0; i < k.length; i++) {
                        k[i] = (float) rnd.nextGaussian();
                        v[i] = (float) rnd.nextGaussian();
                    }
                    for (int i = 0; i < q.length; i++) {
                        q[i] = (float) rnd.nextGaussian();
                    }
                    seq.append(l, k, v, pos);
                    recent.push(l, q, pos);
                }
                CompressionResult s = dc.afterToken(seq, c, recent.inputs(wo));
                if (step % interval == 0) {
                    assertNotNull(s, "step " + step);
                    for (int l = 0; l < SHAPE.layers(); l++) {
                        for (int h = 0; h < SHAPE.kvHeads(); h++) {
                            assertEquals(target, seq.length(l, h));
                            long[] positions = seq.positions(l, h);
                            // the window (the last W decoded tokens) survives
                            for (int i = 0; i < W; i++) {
                                assertEquals(pos - W + 1 + i, positions[target - W + i]);
                            }
                        }
                    }
                } else {
                    assertNull(s);
                    assertEquals(before + 1, seq.length(0, 0));
                }
            }
            assertEquals(35, dc.steps());
            assertTrue(seq.length(0, 0) == target + 5);
            seq.close();
        }
    }

    @Test
    void recentQueriesKeepTheLastQueriesInOrder() {
        RecentQueries r = new RecentQueries(1, 1, 2, 3);
        assertNull(r.window(0));
        for (int i = 0; i < 5; i++) {
            r.push(0, new float[]{i, -i}, 10 + i);
        }
        LayerInputs w = r.window(0);
        assertArrayEquals(new long[]{12, 13, 14}, w.windowPositions());
        assertArrayEquals(new float[]{2, -2, 3, -3, 4, -4}, w.windowQueries());
        assertThrows(KvArgumentException.class, () -> r.push(0, new float[]{0, 0}, 14));
        assertThrows(KvArgumentException.class, () -> r.push(0, new float[]{0}, 15));
    }

    /** Sizes beyond a layout's limits are refused before anything is allocated (they used to run out of heap). */
    @Test
    void recentQueriesRefuseSizesBeyondTheLimitsBeforeAllocating() {
        assertThrows(KvArgumentException.class, () -> new RecentQueries(1 << 20, 40, 33, 64));
        assertThrows(KvArgumentException.class, () -> new RecentQueries(31, 7, 1 << 20, 7));
        assertThrows(KvArgumentException.class, () -> new RecentQueries(65536, Integer.MAX_VALUE, 65536, 1));
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> new RecentQueries(2, 64, 128, 1 << 20));      // 2^33 floats per layer
        assertTrue(e.getMessage().contains("at most " + RecentQueries.MAX_RING_FLOATS), e.getMessage());
        assertNull(new RecentQueries(io.kvslab.KvLayout.MAX_LAYERS, 32, 128, 1).window(0), "the largest layer count is allowed");
    }
}
