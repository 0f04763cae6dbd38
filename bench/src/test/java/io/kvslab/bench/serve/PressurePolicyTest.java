package io.kvslab.bench.serve;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvCacheManager;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.bench.serve.PressurePolicy.Action;
import io.kvslab.bench.serve.PressurePolicy.Candidate;
import io.kvslab.bench.serve.PressurePolicy.Decision;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Layout: 2 layers x 2 KV heads, 4 tokens per block: a sequence of n rows holds 8 * ceil(n / 4) blocks. StreamingLLM
 * at 0.5 keeps floor(n / 2) rows of every table (4 sinks and the newest).
 */
class PressurePolicyTest {
    static final KvLayout LAYOUT = new KvLayout(2, 2, 2, 4, DType.F32, 4);

    static Sequence filled(KvStore store, int rows) {
        Sequence s = store.newSequence();
        float[] k = new float[2 * 4];
        for (int l = 0; l < 2; l++) {
            for (int p = 0; p < rows; p++) {
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) Math.sin(p * 0.3 + i + l);
                }
                s.append(l, k, k, p);
            }
        }
        return s;
    }

    @Test
    void compressesTheLongestFirstAndOnlyWhatIsNeeded() {
        try (KvStore store = KvStore.open(LAYOUT);
             PressurePolicy p = PressurePolicy.parse("compress:streamingllm:0.5,recompute", null)) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence a = filled(store, 8);    // 16 blocks; 0.5 -> 4 rows, 1 block per table: frees 8
            Sequence b = filled(store, 16);   // 32 blocks; 0.5 -> 8 rows: frees 16
            Sequence c = filled(store, 2);    // 8 blocks; 0.5 -> 1 row: still one block, frees nothing: skipped
            List<Candidate> running = List.of(new Candidate(a, 0, 1), new Candidate(b, 0, 2), new Candidate(c, 0, 3));
            List<Decision> d = p.relieve(m, running, 10);
            assertEquals(1, d.size());
            assertEquals(Action.COMPRESS, d.get(0).action());
            assertEquals(b, d.get(0).sequence());
            assertEquals(16, d.get(0).blocksFreed());
            assertEquals(8, b.length(1, 1));
            assertEquals(4, b.positions(0, 0)[3] + 1);     // sinks 0..3 kept
            assertEquals(15, b.positions(0, 0)[7]);        // then the newest
            // b is not compressed twice; a is next; c frees nothing; then recompute drops the newest arrival (c)
            d = p.relieve(m, running, 12);
            assertEquals(List.of(Action.COMPRESS, Action.RECOMPUTE), actions(d));
            assertEquals(a, d.get(0).sequence());
            assertEquals(8, d.get(0).blocksFreed());
            assertEquals(c, d.get(1).sequence());
            assertEquals(8, d.get(1).blocksFreed());
            assertTrue(c.isClosed());
            assertFalse(a.isClosed() || b.isClosed());
            a.close();
            b.close();
        }
    }

    @Test
    void recomputeTakesLowestPriorityThenNewest() {
        try (KvStore store = KvStore.open(LAYOUT); PressurePolicy p = PressurePolicy.parse("recompute", null)) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence old = filled(store, 4);
            Sequence young = filled(store, 4);
            Sequence important = filled(store, 4);
            List<Candidate> running = List.of(new Candidate(old, 0, 1), new Candidate(young, 0, 2),
                    new Candidate(important, 5, 3));
            List<Decision> d = p.relieve(m, running, 9);    // 8 per sequence: two go
            assertEquals(List.of(young, old), List.of(d.get(0).sequence(), d.get(1).sequence()));
            assertTrue(old.isClosed() && young.isClosed() && !important.isClosed());
            assertEquals(8, store.stats().liveBlocks());
            assertTrue(p.relieve(m, List.of(), 1).isEmpty());
            important.close();
        }
    }

    @Test
    void swapUsesTheSwapperInOrder() {
        List<Sequence> swapped = new ArrayList<>();
        try (KvStore store = KvStore.open(LAYOUT);
             PressurePolicy p = PressurePolicy.parse("swap,recompute", s -> {
                 swapped.add(s);
                 s.close();     // a stand-in tier: frees the blocks
                 return true;
             })) {
            KvCacheManager m = KvCacheManager.of(store);
            Sequence a = filled(store, 4);
            List<Decision> d = p.relieve(m, List.of(new Candidate(a, 0, 1)), 1);
            assertEquals(List.of(Action.SWAP), actions(d));
            assertEquals(List.of(a), swapped);
        }
    }

    @Test
    void badSpecsAreTypedExceptions() {
        for (String bad : new String[] {"", "compress", "compress:snapkv:0.5", "compress:nope:0.5",
                "compress:streamingllm:1.5", "compress:knorm:0", "recompute,recompute", "evict", "recompute:1"}) {
            assertThrows(KvArgumentException.class, () -> PressurePolicy.parse(bad, null), bad);
        }
        assertThrows(KvArgumentException.class, () -> PressurePolicy.parse("swap", null));
        try (PressurePolicy p = PressurePolicy.parse("compress:knorm:128, recompute", null)) {
            assertEquals("[compress:knorm:128, recompute]", p.steps().toString());
        }
    }

    static List<Action> actions(List<Decision> d) {
        return d.stream().map(Decision::action).toList();
    }
}
