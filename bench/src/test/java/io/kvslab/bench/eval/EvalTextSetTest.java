package io.kvslab.bench.eval;

import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EvalTextSetTest {
    @Test
    void shippedSetIsReproducibleFromItsSeeds() {
        EvalTextSet saved = EvalTextSet.load();
        assertEquals(16, saved.stories().size());
        LoadedModel m = SharedModels.bin();
        long[] seeds = saved.stories().stream().mapToLong(EvalTextSet.Story::seed).toArray();
        EvalTextSet again = EvalTextSet.sample(m, seeds, saved.temperature(), saved.topp(), saved.steps(), saved.command());
        for (int i = 0; i < seeds.length; i++) {
            EvalTextSet.Story a = saved.stories().get(i);
            EvalTextSet.Story b = again.stories().get(i);
            assertArrayEquals(a.ids(), b.ids(), "story of seed " + a.seed());
            assertEquals(a.text(), b.text());
            assertTrue(a.tokens(1).length <= m.model().config().contextLength(), "fits the context");
        }
        assertEquals(saved.toJson(), again.toJson());
        assertEquals(saved.toJson(), EvalTextSet.parse(saved.toJson()).toJson(), "JSON round trip");
    }
}
