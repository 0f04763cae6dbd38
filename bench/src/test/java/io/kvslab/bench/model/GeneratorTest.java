package io.kvslab.bench.model;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** llama2.c's step accounting: {@code steps} counts positions, the prompt included, also when it cuts the prompt. */
class GeneratorTest {
    @Test
    void shorterRunsArePrefixesOfTheGreedyGolden() {
        SharedModels.Golden g = SharedModels.goldens().stream().filter(x -> x.file().startsWith("greedy-lily")).findFirst()
                .orElseThrow();
        LoadedModel m = SharedModels.bin();
        int promptTokens = m.tokenizer().encode(g.prompt(), true, false).length; // 8: BOS + 7
        for (int steps : new int[]{1, 2, promptTokens - 1, promptTokens, promptTokens + 1, 40}) {
            try (Session s = Session.reference(m.model())) {
                Generation gen = Generator.generate(s, m.tokenizer(), g.prompt(), steps, new Sampler(512, 0f, 0.9f, 1), null);
                assertArrayEquals(Arrays.copyOf(g.ids(), steps), gen.ids(), "steps " + steps);
                assertEquals(steps, gen.positions(), "positions run for steps " + steps);
            }
        }
    }

    @Test
    void zeroStepsMeanTheWholeContextAndASessionIsSingleUse() {
        LoadedModel m = SharedModels.bin();
        try (Session s = Session.reference(m.model())) {
            Generation gen = Generator.generate(s, m.tokenizer(), "Lily and Ben went to the park", 0,
                    new Sampler(512, 0f, 0.9f, 1), null);
            assertEquals(512, gen.ids().length, "this greedy story never emits BOS: it runs to the context");
            assertThrows(IllegalStateException.class, () -> Generator.generate(s, m.tokenizer(), "x", 5,
                    new Sampler(512, 0f, 0.9f, 1), null));
        }
    }

    @Test
    void storeOfAnotherGeometryIsRejected() {
        LlamaModel model = SharedModels.bin().model();
        try (KvStore store = KvStore.open(KvLayout.of(5, 8, 8, 8, DType.F32))) {
            StoreKvCache cache = new StoreKvCache(store.newSequence(), new ReferenceAttention());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Session(model, cache, MatMul.JAVA, 16));
            assertEquals(true, e.getMessage().contains("kv heads 4"), e.getMessage());
            cache.close();
        }
    }
}
