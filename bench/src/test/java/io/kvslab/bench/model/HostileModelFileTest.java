package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile model files (audit row 8 of issue 11 and its relatives): GGUF tensor directories whose tensors alias, overlap
 * or run past the data section, counts and lengths far beyond the file, and files truncated while they are loaded. Each
 * is a {@link ModelFormatException} naming the file, the field and the allowed range, before anything large is
 * allocated.
 */
class HostileModelFileTest {
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

    private static ModelFormatException loadFails(Path model) {
        return assertThrows(ModelFormatException.class, () -> LoadedModel.load(model, null));
    }

    /** Llama metadata for {@code layers} blocks of width {@code dim}, and the tensor names and shapes they need. */
    private static GgufWriter aliasedModel(int layers, int dim, int hidden, int vocab, long offsetStep) {
        List<String> tokens = new ArrayList<>();
        float[] scores = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            tokens.add("t" + i);
            scores[i] = -i;
        }
        GgufWriter w = new GgufWriter().string("general.architecture", "llama")
                .u32("llama.embedding_length", dim).u32("llama.feed_forward_length", hidden)
                .u32("llama.block_count", layers).u32("llama.attention.head_count", 1)
                .u32("llama.context_length", 512).string("tokenizer.ggml.model", "llama")
                .strings("tokenizer.ggml.tokens", tokens).floats("tokenizer.ggml.scores", scores);
        long[] off = {0};
        java.util.function.BiConsumer<String, long[]> add = (name, dims) -> {
            w.tensorAt(name, dims, 0, off[0]);
            off[0] += offsetStep;
        };
        add.accept("token_embd.weight", new long[] {dim, vocab});
        for (int l = 0; l < layers; l++) {
            String p = "blk." + l + ".";
            add.accept(p + "attn_norm.weight", new long[] {dim});
            add.accept(p + "attn_q.weight", new long[] {dim, dim});
            add.accept(p + "attn_k.weight", new long[] {dim, dim});
            add.accept(p + "attn_v.weight", new long[] {dim, dim});
            add.accept(p + "attn_output.weight", new long[] {dim, dim});
            add.accept(p + "ffn_norm.weight", new long[] {dim});
            add.accept(p + "ffn_gate.weight", new long[] {dim, hidden});
            add.accept(p + "ffn_down.weight", new long[] {hidden, dim});
            add.accept(p + "ffn_up.weight", new long[] {dim, hidden});
        }
        add.accept("output_norm.weight", new long[] {dim});
        return w;
    }

    @Test
    void theAuditsAliasedGgufIsRejectedBeforeLoadingAnyTensor() throws IOException {
        // Audit row 8: 4096 layers whose tensors all sit at data offset 0 over 1 MiB of zeros; the old loader copied
        // every tensor to the heap (13 GB of float arrays for a 3.3 MB file) and died with OutOfMemoryError.
        int dim = 64;
        int hidden = 4096;
        byte[] b = aliasedModel(4096, dim, hidden, 512, 0).trailingData(new byte[4 * dim * hidden]).build();
        Path p = write("alias.gguf", b);
        assertTrue(b.length > 3_000_000, "the audit's size class: " + b.length);
        ModelFormatException e = loadFails(p);
        assertEquals(p, e.file());
        assertMessage(e, "alias.gguf", "tensor blk.0.attn_norm.weight at data bytes [0, 256) overlaps tensor "
                + "token_embd.weight at [0, 131072); tensors must not share bytes");
    }

    @Test
    void overlappingTensorsAreRejectedEvenWhenEveryOneFitsTheFile() throws IOException {
        // each tensor starts 32 bytes after the previous one: all inside the data section, all overlapping
        int dim = 32;
        byte[] b = aliasedModel(1, dim, 64, 8, 32).trailingData(new byte[4 * 64 * 64 + 64 * 32]).build();
        assertMessage(loadFails(write("overlap.gguf", b)), "blk.0.attn_norm.weight at data bytes [32, 160) overlaps "
                + "tensor token_embd.weight at [0, 1024)");
    }

    @Test
    void aTensorPastTheDataSectionIsRejectedWithTheSectionSize() throws IOException {
        TinyModel t = new TinyModel(3);
        byte[] b = t.ggufHeader("llama").f32Tensor("token_embd.weight", t.emb, 32, t.vocab)
                .tensorAt("output_norm.weight", new long[] {32}, 0, 1L << 40).build();
        assertMessage(loadFails(write("past.gguf", b)), "tensor output_norm.weight [32] occupies data bytes "
                + "[1099511627776, 1099511627776 + 128)", "outside the data section of " + 4 * 32 * t.vocab + " bytes");
        // dims each within the file size whose byte size overflows a long: 2^60 F64 elements = 2^63 bytes
        long d = 1L << 15;
        byte[] huge = t.ggufHeader("llama").f32Tensor("token_embd.weight", t.emb, 32, t.vocab)
                .tensorAt("output_norm.weight", new long[] {d, d, d, d}, 28, 0).build();
        assertTrue(huge.length > d, "every dimension is within the file's size");
        assertMessage(loadFails(write("huge.gguf", huge)), "tensor output_norm.weight has more elements or bytes than "
                + "a 64-bit size holds");
    }

    @Test
    void unknownTensorTypesAndMisalignedQuantisedRowsAreRejectedAtParse() throws IOException {
        TinyModel t = new TinyModel(4);
        byte[] odd = t.ggufHeader("llama").f32Tensor("token_embd.weight", t.emb, 32, t.vocab)
                .tensor("extra.weight", new long[] {4}, 99, new byte[16]).build();
        assertMessage(loadFails(write("odd.gguf", odd)), "tensor extra.weight has type unknown id 99");
        byte[] q8 = t.ggufHeader("llama").tensor("token_embd.weight", new long[] {33, t.vocab}, 8, new byte[34]).build();
        assertMessage(loadFails(write("q8.gguf", q8)), "Q8_0 tensor token_embd.weight has rows of 33 elements",
                "multiple of its block size 32");
    }

    private static byte[] patchLong(byte[] b, int at, long v) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
        return c;
    }

    @Test
    void countsAndLengthsBeyondTheFileAreRejectedWithTheirRange() throws IOException {
        TinyModel t = new TinyModel(5);
        byte[] good = t.gguf(TinyModel.Kind.F32, false);
        // tensor count (offset 8) and metadata count (offset 16)
        assertMessage(loadFails(write("tc.gguf", patchLong(good, 8, Long.MAX_VALUE))),
                "tensor count of 9223372036854775807, allowed [0, ");
        assertMessage(loadFails(write("kc.gguf", patchLong(good, 16, 1L << 40))),
                "metadata count of 1099511627776, allowed [0, ");
        // the first key's length (offset 24)
        assertMessage(loadFails(write("key.gguf", patchLong(good, 24, -1))),
                "metadata key #0 claims a length of -1 bytes, allowed [0, ");
        // the tokens array length: after "tokenizer.ggml.tokens", its type (9) and element type (8)
        int at = indexOf(good, "tokenizer.ggml.tokens".getBytes()) + "tokenizer.ggml.tokens".length() + 8;
        ModelFormatException e = loadFails(write("arr.gguf", patchLong(good, at, 1L << 33)));
        assertMessage(e, "array tokenizer.ggml.tokens claims 8589934592 elements, allowed [0, ");
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }

    @Test
    void aGgufTruncatedWhileItIsLoadedFailsTyped() throws IOException {
        TinyModel t = new TinyModel(6);
        Path p = write("cut.gguf", t.gguf(TinyModel.Kind.F16, true));
        try (ModelFile f = ModelFile.open(p)) {
            GgufFile g = GgufFile.parse(f);
            try (FileChannel c = FileChannel.open(p, StandardOpenOption.WRITE)) {
                c.truncate(g.tensors().size() * 8L);   // another process cuts the file after the header was read
            }
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> g.readTensor("output.weight", TinyModel.DIM, t.vocab));
            assertMessage(e, "cut.gguf", "while reading tensor output.weight", "truncated or replaced while being loaded");
        }
    }

    @Test
    void aTokenizerShorterThanTheVocabularyIsRejectedBeforeAllocatingIt() throws IOException {
        TinyModel t = new TinyModel(7);
        byte[] tok = Arrays.copyOf(t.tokenizer(), 4 + 8 * 10);
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> Llama2cTokenizer.load(write("short.tok", tok), Integer.MAX_VALUE));
        assertMessage(e, "short.tok", "vocabulary of 2147483647 tokens needs at least 17179869176 bytes", "has 80");
    }

    @Test
    void aNonFiniteTokenScoreInAGgufIsRejectedAsInTheLlama2cTokenizer() throws IOException {
        TinyModel t = new TinyModel(8);
        byte[] b = t.gguf(TinyModel.Kind.F32, false);
        // the scores array: after "tokenizer.ggml.scores", its type (9), element type (6) and length (8 bytes)
        int at = indexOf(b, "tokenizer.ggml.scores".getBytes()) + "tokenizer.ggml.scores".length() + 16 + 4 * 5;
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putFloat(at, Float.NaN);
        assertMessage(loadFails(write("nanscore.gguf", b)), "nanscore.gguf", "tokenizer.ggml.scores[5] is NaN",
                "expected a finite number");
    }
}
