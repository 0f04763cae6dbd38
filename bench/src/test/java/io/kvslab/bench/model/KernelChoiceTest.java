package io.kvslab.bench.model;

import io.kvslab.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code generate}'s automatic kernel choice: its threshold on hand-counted shapes, and llama2.c's tokens with it. */
class KernelChoiceTest {
    @Test
    void countsEveryMatrixOfAToken() {
        // dim 64, hidden 172, 5 layers, 8 heads / 4 KV heads (kvDim 32), vocab 512: stories260K's shape.
        ModelConfig c = new ModelConfig(64, 172, 5, 8, 4, 512, 512, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS);
        long perLayer = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 172;   // wq, wk, wv, wo, w1, w2, w3
        assertEquals(5 * perLayer + 512 * 64, KernelChoice.weightsPerToken(c));
        assertEquals(new KernelChoice(KvBackend.STORE_JAVA, MatMul.JAVA), KernelChoice.auto(c));
    }

    @Test
    void aRealModelGetsTheNativeKernelAndOpenBlas() {
        // stories15M: dim 288, hidden 768, 6 layers, 6 heads, vocab 32000: 15 M weights per token.
        ModelConfig s15 = new ModelConfig(288, 768, 6, 6, 6, 32000, 256, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS);
        assertEquals(new KernelChoice(KvBackend.STORE, MatMul.OPENBLAS), KernelChoice.auto(s15));
        // either side of the threshold: 4 layers of dim 248 (987,288 weights) stay Java, dim 250 (1,003,250) not
        ModelConfig below = new ModelConfig(248, 1, 4, 1, 1, 1, 16, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS);
        ModelConfig above = new ModelConfig(250, 1, 4, 1, 1, 1, 16, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS);
        assertEquals(4 * (4 * 248 * 248 + 3 * 248) + 248, KernelChoice.weightsPerToken(below));
        assertEquals(4 * (4 * 250 * 250 + 3 * 250) + 250, KernelChoice.weightsPerToken(above));
        assertEquals(new KernelChoice(KvBackend.STORE_JAVA, MatMul.JAVA), KernelChoice.auto(below));
        assertEquals(new KernelChoice(KvBackend.STORE, MatMul.OPENBLAS), KernelChoice.auto(above));
    }

    @Test
    void theAutomaticChoiceReproducesLlama2c() {
        LoadedModel m = SharedModels.bin();
        KernelChoice auto = KernelChoice.auto(m.model().config());
        assertEquals(new KernelChoice(KvBackend.STORE_JAVA, MatMul.JAVA), auto);
        for (SharedModels.Golden g : SharedModels.goldens()) {
            try (Session s = new Session(m.model(), auto.kv().open(m.model().config(), DType.F32), auto.matMul(),
                    Session.DEFAULT_CHUNK)) {
                Generation gen = Generator.generate(s, m.tokenizer(), g.prompt(), g.steps(),
                        new Sampler(m.model().config().vocabSize(), g.temperature(), g.topp(), g.seed()), null);
                assertArrayEquals(g.ids(), gen.ids(), "token ids of " + g.file());
                assertEquals(g.text(), gen.text(), "text of " + g.file());
            }
        }
    }
}
