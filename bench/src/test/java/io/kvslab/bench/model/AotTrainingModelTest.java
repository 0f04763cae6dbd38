package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The build's AOT training model must drive {@code generate} down the same paths as stories260K: the same geometry,
 * a prompt that encodes through merges, and a greedy run over the whole context (an early BOS would end training).
 */
class AotTrainingModelTest {
    @Test
    void writesALoadableModelOfStories260KShapeThatGeneratesToTheEndOfItsContext(@TempDir Path dir) throws Exception {
        AotTrainingModel.main(new String[]{dir.toString()});
        LoadedModel m = LoadedModel.load(dir.resolve(AotTrainingModel.CHECKPOINT), dir.resolve(AotTrainingModel.TOKENIZER));
        ModelConfig c = m.model().config();
        assertEquals(new ModelConfig(64, 172, 5, 8, 4, 512, 512, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS), c);

        int[] ids = m.tokenizer().encode("Lily and Ben went to the park", true, false);
        assertEquals(m.tokenizer().bos(), ids[0]);
        assertTrue(Arrays.stream(ids, 1, ids.length).allMatch(t -> t >= 259),
                "every piece of the prompt is a merge, not a byte fallback: " + Arrays.toString(ids));
        assertEquals("Lily and Ben went to the park", m.tokenizer().decode(ids[0], Arrays.copyOfRange(ids, 1, ids.length)).strip());

        try (Session s = Session.reference(m.model())) {
            Generation g = Generator.generate(s, m.tokenizer(), "Lily and Ben went to the park", 0,
                    new Sampler(512, 0f, 0.9f, 1), null);
            assertEquals(512, g.positions(), "greedy decoding never picks BOS (its embedding row is zero)");
        }
        // deterministic: the build writes the same bytes every time
        Path again = Files.createDirectory(dir.resolve("again"));
        AotTrainingModel.main(new String[]{again.toString()});
        assertArrayEquals(Files.readAllBytes(dir.resolve(AotTrainingModel.CHECKPOINT)),
                Files.readAllBytes(again.resolve(AotTrainingModel.CHECKPOINT)));
    }

    @Test
    void hasTheGeometryOfTheSharedStories260K() {
        ModelConfig shared = SharedModels.bin().model().config();
        assertEquals(shared.dim(), AotTrainingModel.DIM);
        assertEquals(shared.hiddenDim(), AotTrainingModel.HIDDEN);
        assertEquals(shared.layers(), AotTrainingModel.LAYERS);
        assertEquals(shared.heads(), AotTrainingModel.HEADS);
        assertEquals(shared.kvHeads(), AotTrainingModel.KV_HEADS);
        assertEquals(shared.vocabSize(), AotTrainingModel.VOCAB);
        assertEquals(shared.contextLength(), AotTrainingModel.CONTEXT);
    }
}
