package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Review finding F5: a 4 KB sparse llama2.c file with seq_len 2^31-1 made {@code generate --steps=0} die allocating
 * {@code int[seq_len]}. The header's seq_len is now capped as GGUF's context length is, and the generator grows its
 * id array as tokens come instead of sizing it by the steps asked for.
 */
class ContextLengthCapTest {
    @TempDir
    Path dir;

    @Test
    void aLlama2cSeqLenAboveTheCapIsRefusedNamingTheCap() throws IOException {
        // the reviewer's file: dim 2, hidden 4, 1 layer, 1 head, vocab 512, seq_len 2^31-1; sized as its header says
        // (16 GB apparent, a hole on disk), so only the cap can refuse it
        int dim = 2;
        int hidden = 4;
        int vocab = 512;
        int seqLen = Integer.MAX_VALUE;
        ModelConfig small = new ModelConfig(dim, hidden, 1, 1, 1, vocab, 1, ModelConfig.DEFAULT_ROPE_THETA,
                ModelConfig.DEFAULT_NORM_EPS);
        long size = Llama2cCheckpoint.expectedBytes(small, true) + 4L * ((long) seqLen - 1) * small.headDim();
        Path p = dir.resolve("seq_huge.bin");
        try (FileChannel c = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(dim).putInt(hidden).putInt(1).putInt(1).putInt(1).putInt(vocab).putInt(seqLen).flip();
            c.write(h);
            c.write(ByteBuffer.wrap(new byte[1]), size - 1);
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cCheckpoint.load(p));
        assertTrue(e.getMessage().contains("seq_huge.bin: llama2.c header claims seq_len 2147483647, allowed 1.."
                + ModelConfig.MAX_CONTEXT), e.getMessage());
    }

    @Test
    void generationLongerThanTheFirstIdBufferKeepsEveryId() {
        // stories260K's weights with a context of 2048 (RoPE has no limit): more ids than the generator's first buffer
        // of 1024, and the first 512 are those of the model's own context
        LoadedModel m = SharedModels.bin();
        ModelConfig c = m.model().config();
        ModelConfig longer = new ModelConfig(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.vocabSize(),
                2048, c.ropeTheta(), c.normEps());
        LlamaModel wide = new LlamaModel(longer, m.model().weights(), "wide");
        String prompt = "Lily and Ben went to the park";
        Generation full;
        try (Session s = Session.reference(wide)) {
            full = Generator.generate(s, m.tokenizer(), prompt, 1500, new Sampler(c.vocabSize(), 0f, 0.9f, 1), null);
        }
        Generation ref;
        try (Session s = Session.reference(m.model())) {
            ref = Generator.generate(s, m.tokenizer(), prompt, 0, new Sampler(c.vocabSize(), 0f, 0.9f, 1), null);
        }
        // greedy, this story emits BOS at position 1092 (so the run stops there): past the first buffer all the same
        assertTrue(full.ids().length > 1024, "ids: " + full.ids().length);
        assertEquals(full.ids().length, full.positions() - 1, "one id per position but the stopping BOS");
        assertArrayEquals(ref.ids(), Arrays.copyOf(full.ids(), ref.ids().length));
    }
}
