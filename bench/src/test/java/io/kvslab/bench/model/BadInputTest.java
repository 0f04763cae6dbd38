package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Truncated, corrupt and unsupported files, and prompts beyond the context, fail with a typed exception that names
 * the file or value and what was expected; the corrupted copies are written to a temp directory.
 */
class BadInputTest {
    @TempDir
    Path dir;

    private Path write(String name, byte[] b) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, b);
        return p;
    }

    private static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' should mention '" + p + "'");
        }
    }

    private ModelFormatException loadFails(Path model, Path tokenizer) {
        return assertThrows(ModelFormatException.class, () -> LoadedModel.load(model, tokenizer));
    }

    @Test
    void truncatedCheckpoints() throws IOException {
        byte[] full = Files.readAllBytes(SharedModels.binFile());
        Path tok = SharedModels.tokenizerFile();
        for (int len : new int[]{0, 3, 27, 28, 1000, full.length / 2, full.length - 1}) {
            Path p = write("cut" + len + ".bin", Arrays.copyOf(full, len));
            ModelFormatException e = loadFails(p, tok);
            assertEquals(p, e.file());
            assertMessage(e, p.getFileName().toString());
            if (len >= 28) {
                assertMessage(e, "has " + len + " bytes", "exactly " + full.length + " bytes", "truncated");
            } else {
                assertMessage(e, "shorter than the 28-byte llama2.c header");
            }
        }
        Path longer = write("longer.bin", Arrays.copyOf(full, full.length + 4));
        assertMessage(loadFails(longer, tok), "longer than its header says");
    }

    @Test
    void corruptCheckpointHeaders() throws IOException {
        byte[] full = Files.readAllBytes(SharedModels.binFile());
        Path tok = SharedModels.tokenizerFile();
        // n_heads (field 3) = 7: 64 is not a multiple of 7
        assertMessage(loadFails(write("heads.bin", patchInt(full, 3, 7)), tok), "dim 64 must be a multiple of n_heads 7");
        // n_kv_heads (field 4) = 3
        assertMessage(loadFails(write("kv.bin", patchInt(full, 4, 3)), tok), "n_heads 8 must be a multiple of n_kv_heads 3");
        // dim = 0
        assertMessage(loadFails(write("dim.bin", patchInt(full, 0, 0)), tok), "must be positive");
        // vocab_size negative = separate classifier, which this file lacks
        assertMessage(loadFails(write("vocab.bin", patchInt(full, 5, -512)), tok), "separate classifier", "truncated");
        // huge dimensions cannot overflow into a plausible size
        assertMessage(loadFails(write("huge.bin", patchInt(patchInt(full, 0, 1 << 30), 3, 1 << 20)), tok), "header is corrupt");
    }

    @Test
    void nonFiniteWeightIsRejected() throws IOException {
        byte[] full = Files.readAllBytes(SharedModels.binFile());
        byte[] bad = full.clone();
        // first element of wq of layer 0: after the header, the embedding (512*64) and rms_att (5*64)
        int off = 28 + 4 * (512 * 64 + 5 * 64);
        ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putFloat(off, Float.NaN);
        assertMessage(loadFails(write("nan.bin", bad), SharedModels.tokenizerFile()), "wq of layer 0", "non-finite");
    }

    private static byte[] patchInt(byte[] b, int field, int value) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(4 * field, value);
        return c;
    }

    @Test
    void corruptTokenizers() throws IOException {
        Path model = SharedModels.binFile();
        byte[] tok = Files.readAllBytes(SharedModels.tokenizerFile());
        assertMessage(loadFails(model, write("empty.tok", new byte[0])), "before max_token_length");
        assertMessage(loadFails(model, write("half.tok", Arrays.copyOf(tok, tok.length / 2))), "truncated");
        assertMessage(loadFails(model, write("cut.tok", Arrays.copyOf(tok, tok.length - 1))), "token 511");
        assertMessage(loadFails(model, write("more.tok", Arrays.copyOf(tok, tok.length + 9))), "9 bytes remain");
        // the first token's length field (after max_token_length and its score) set to 1000 > max_token_length 7
        byte[] badLen = tok.clone();
        ByteBuffer.wrap(badLen).order(ByteOrder.LITTLE_ENDIAN).putInt(8, 1000);
        assertMessage(loadFails(model, write("len.tok", badLen)), "token 0 has length 1000", "0..7");
        byte[] badMax = tok.clone();
        ByteBuffer.wrap(badMax).order(ByteOrder.LITTLE_ENDIAN).putInt(0, -5);
        assertMessage(loadFails(model, write("max.tok", badMax)), "max_token_length is -5");
    }

    @Test
    void missingFilesAndMissingTokenizer() {
        Path nowhere = dir.resolve("nope.bin");
        assertMessage(loadFails(nowhere, SharedModels.tokenizerFile()), "nope.bin", "no such file");
        assertMessage(loadFails(SharedModels.binFile(), null), "no tokenizer inside");
    }

    @Test
    void truncatedGguf() throws IOException {
        byte[] full = Files.readAllBytes(SharedModels.ggufFile());
        for (int len : new int[]{4, 10, 24, 5000, 14152, full.length / 2, full.length - 1}) {
            Path p = write("cut" + len + ".gguf", Arrays.copyOf(full, len));
            ModelFormatException e = loadFails(p, null);
            assertMessage(e, p.getFileName().toString(), "truncated");
        }
    }

    @Test
    void unsupportedGgufArchitectureTypeAndVersion() throws IOException {
        TinyModel t = new TinyModel(5);
        assertMessage(loadFails(write("gpt2.gguf", t.ggufHeader("gpt2").build()), null),
                "architecture is 'gpt2'", "only 'llama'");
        // a Q4_0 (type 2) tensor where weights are expected
        byte[] q4 = t.ggufHeader("llama").tensor("token_embd.weight", new long[]{32, t.vocab}, 2, new byte[18 * t.vocab]).build();
        assertMessage(loadFails(write("q4.gguf", q4), null), "token_embd.weight", "Q4_0 (id 2)", "supported tensor types");
        byte[] odd = t.ggufHeader("llama").tensor("token_embd.weight", new long[]{32, t.vocab}, 77, new byte[4]).build();
        assertMessage(loadFails(write("odd.gguf", odd), null), "unknown id 77");
        assertMessage(loadFails(write("v1.gguf", t.ggufHeader("llama").version(1).build()), null), "GGUF version 1");
        // a wrong magic is no GGUF: read as a llama2.c checkpoint, which needs a tokenizer
        assertThrows(ModelFormatException.class,
                () -> LoadedModel.load(write("magic.gguf", t.ggufHeader("llama").magic(0x12345678).build()), null));
    }

    @Test
    void ggufWithMissingOrMisshapenTensors() throws IOException {
        TinyModel t = new TinyModel(6);
        assertMessage(loadFails(write("none.gguf", t.ggufHeader("llama").build()), null), "token_embd.weight is missing");
        byte[] noQ = t.ggufHeader("llama").f32Tensor("token_embd.weight", t.emb, 32, t.vocab).build();
        assertMessage(loadFails(write("noq.gguf", noQ), null), "attn_norm.weight is missing");
        byte[] shape = t.ggufHeader("llama").f32Tensor("token_embd.weight", t.emb, 32, t.vocab)
                .f32Tensor("blk.0.attn_norm.weight", new float[16], 16).build();
        assertMessage(loadFails(write("shape.gguf", shape), null), "blk.0.attn_norm.weight has shape [16], expected [32]");
        byte[] tokenizer = new GgufWriter().string("general.architecture", "llama").u32("llama.context_length", 24)
                .u32("llama.embedding_length", 32).u32("llama.feed_forward_length", 64).u32("llama.block_count", 1)
                .u32("llama.attention.head_count", 4).build();
        assertMessage(loadFails(write("notensor.gguf", tokenizer), null), "token_embd.weight is missing");
        byte[] noArch = new GgufWriter().u32("llama.context_length", 24).build();
        assertMessage(loadFails(write("noarch.gguf", noArch), null), "general.architecture is missing");
    }

    @Test
    void promptLongerThanTheContext() {
        LoadedModel m = SharedModels.bin();
        String longPrompt = "The dog ran to the big tree and sat down. ".repeat(60);
        try (Session s = Session.reference(m.model())) {
            ContextOverflowException e = assertThrows(ContextOverflowException.class,
                    () -> Generator.generate(s, m.tokenizer(), longPrompt, 256, new Sampler(512, 0f, 0.9f, 1), null));
            assertMessage(e, "context length is 512", "tokens");
            assertEquals(0, s.position(), "nothing was fed");
        }
        // far past what 512 tokens of at most 7 bytes can hold (3584 bytes): refused from its length, not encoded
        // (encoding 1 MB took hours before merges were heap-ordered)
        String huge = "Lily and Ben went to the park. ".repeat(33_000);
        try (Session s = Session.reference(m.model())) {
            ContextOverflowException e = assertThrows(ContextOverflowException.class,
                    () -> Generator.generate(s, m.tokenizer(), huge, 256, new Sampler(512, 0f, 0.9f, 1), null));
            assertMessage(e, "prompt of 1023000 bytes", "cannot fit", "context length is 512", "at most 3584 bytes");
            assertEquals(0, s.position(), "nothing was fed");
        }
        // at the bound the prompt is encoded and refused by its token count; one byte more, by its length
        try (Session s = Session.reference(m.model())) {
            String at = "a".repeat(3584);
            assertMessage(assertThrows(ContextOverflowException.class, () -> Generator.generate(s, m.tokenizer(), at,
                    256, new Sampler(512, 0f, 0.9f, 1), null)), "encodes to", "context length is 512");
            assertMessage(assertThrows(ContextOverflowException.class, () -> Generator.generate(s, m.tokenizer(),
                    at + "a", 256, new Sampler(512, 0f, 0.9f, 1), null)), "prompt of 3585 bytes", "cannot fit");
        }
        try (Session s = Session.reference(m.model())) {
            int[] many = new int[513];
            Arrays.fill(many, 300);
            assertMessage(assertThrows(ContextOverflowException.class, () -> s.prefill(many)), "context length of 512");
            s.prefill(Arrays.copyOf(many, 512));
            assertMessage(assertThrows(ContextOverflowException.class, () -> s.step(5)), "1 more tokens after 512");
            assertMessage(assertThrows(IllegalArgumentException.class, () -> Session.reference(m.model()).step(512)),
                    "token 512", "outside the vocabulary");
        }
    }
}
