package io.kvslab.bench.model;

import io.kvslab.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Issue 10's acceptance example: an engine with its own forward pass and Hugging Face layout tensors, using only
 * KVSlab's exported API for its cache (KvTensor appends, segment decode/prefill), reproduces every llama2.c golden
 * in ../shared/reference token for token.
 */
class HfLayoutEngineTest {
    static List<SharedModels.Golden> goldens() {
        return SharedModels.goldens();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void reproducesLlama2c(SharedModels.Golden g) {
        LoadedModel m = SharedModels.bin();
        for (int chunk : new int[] {1, 16}) {
            HfLayoutEngine engine = new HfLayoutEngine(m.model(), DType.F32, chunk);
            try (engine) {
                int[] ids = engine.generate(m.tokenizer(), g.prompt(), g.steps(),
                        new Sampler(m.model().config().vocabSize(), g.temperature(), g.topp(), g.seed()));
                assertArrayEquals(g.ids(), ids, g.file() + " with prefill chunks of " + chunk);
            }
            assertEquals(0, engine.reservedBytes(), "native bytes after close");
        }
    }
}
