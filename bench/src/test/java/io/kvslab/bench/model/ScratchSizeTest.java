package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Review finding F3: rows * width of the forward pass's scratch (and of the batch's logits) was computed in int, so
 * a model the loader accepts (dim 2, hidden_dim 2^19 or 2^20) with 4096 rows got arrays of a negative or zero size.
 * The pass now refuses such a row count up front, naming the dimension and the most rows that fit.
 */
class ScratchSizeTest {
    private static ModelConfig wide(int hidden, int vocab) {
        return new ModelConfig(2, hidden, 1, 1, 1, vocab, 16, ModelConfig.DEFAULT_ROPE_THETA, ModelConfig.DEFAULT_NORM_EPS);
    }

    @Test
    void theWidestDimensionBoundsTheRows() {
        ModelConfig c = wide(1 << 20, 512);
        assertEquals(2047, c.maxRows());
        assertNull(c.rowsProblem(2047));
        assertEquals("2048 tokens at once of a model with hidden_dim 1048576 need buffers of 2147483648 floats, more "
                + "than a Java array holds (2147483639); at most 2047 for this model", c.rowsProblem(2048));
        ModelConfig v = wide(4, 1 << 24);
        assertTrue(v.rowsProblem(4096).startsWith("4096 tokens at once of a model with vocab_size 16777216"),
                v.rowsProblem(4096));
        assertNull(SharedModels.bin().model().config().rowsProblem(4096));
    }

    @Test
    void aForwardPassTooWideForJavaArraysIsRefusedBeforeAllocating() {
        int hidden = 1 << 19;
        ModelConfig c = wide(hidden, 512);
        float[][] one = {new float[2]};
        float[][] square = {new float[4]};
        float[][] ffn = {new float[2 * hidden]};
        ModelWeights w = new ModelWeights(c, new float[1024], one, square, square, square, square, one,
                ffn, new float[][] {new float[2 * hidden]}, new float[][] {new float[2 * hidden]}, new float[2],
                new float[1024]);
        LlamaModel m = new LlamaModel(c, w, "wide");
        // the reviewer's serve --max-batch=4096: 4096 * 2^19 = 2^31 floats was new float[-2147483648]
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new BatchForward(m, MatMul.JAVA, 4096, 64));
        assertTrue(e.getMessage().contains("4096 tokens at once of a model with hidden_dim 524288"), e.getMessage());
        // and generate --chunk=4096 (a Session of that chunk)
        assertThrows(IllegalArgumentException.class, () -> new Session(m, new JavaKvCache(c), MatMul.JAVA, 4096));
        try (Session s = new Session(m, new JavaKvCache(c), MatMul.JAVA, 8)) {
            assertEquals(512, s.step(1).length, "a chunk that fits runs");
        }
    }
}
