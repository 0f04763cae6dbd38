package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GGUF metadata arrays (review finding F2): the old parser boxed every element of every array into a list, so a
 * 315 MB file of uint8 arrays took 6.3 GB of heap and a 240 KB sparse file claiming millions of empty strings ran out
 * of memory. Arrays the loader does not read are now checked and skipped, the ones it reads are primitive arrays, and
 * all of those together may take at most the file's length + 1 MiB.
 */
class GgufMetadataArraysTest {
    @TempDir
    Path dir;

    private static GgufFile parse(ModelFile f) {
        return GgufFile.parse(f);
    }

    private static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' should mention '" + p + "'");
        }
    }

    /** A header announcing {@code entries} metadata entries and no tensors. */
    private static byte[] header(int entries) {
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(GgufFile.MAGIC).putInt(3).putLong(0).putLong(entries);
        return b.array();
    }

    private static byte[] arrayHead(String key, int type, long n) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + k.length + 4 + 4 + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(k.length).put(k).putInt(9).putInt(type).putLong(n);
        return b.array();
    }

    @Test
    void arraysTheLoaderDoesNotReadAreSkippedAndTheModelStillLoads() throws IOException {
        TinyModel t = new TinyModel(11);
        byte[] u8 = new byte[1 << 22];
        Arrays.fill(u8, (byte) 0xFF);
        byte[] strings = new byte[8 * 1000];   // 1000 empty strings
        GgufWriter w = t.ggufHeader("llama").array("extra.bytes", 0, u8.length, u8)
                .array("extra.strings", 8, 1000, strings);
        byte[] model = t.gguf(TinyModel.Kind.F32, false);
        // the same model with the two extra arrays in its metadata
        byte[] withExtras = withMetadata(t, w);
        Path p = Files.write(dir.resolve("extras.gguf"), withExtras);
        try (ModelFile f = ModelFile.open(p)) {
            GgufFile g = parse(f);
            GgufFile.Array bytes = assertInstanceOf(GgufFile.Array.class, g.metadata().get("extra.bytes"));
            assertEquals(0, bytes.elementType());
            assertEquals(1 << 22, bytes.length());
            assertNull(bytes.values(), "an array the loader does not read is not materialised");
            GgufFile.Array s = assertInstanceOf(GgufFile.Array.class, g.metadata().get("extra.strings"));
            assertEquals(1000, s.length());
            assertNull(s.values());
            // the arrays the loader reads are primitive: packed strings and a float[]
            GgufFile.StringArray tokens = g.requireStrings("tokenizer.ggml.tokens");
            assertEquals(t.vocab, tokens.size());
            assertEquals("<0x41>", tokens.get(3 + 0x41));
            assertArrayEquals(t.scores, g.requireFloats("tokenizer.ggml.scores"));
        }
        LoadedModel a = LoadedModel.load(p, null);
        LoadedModel b = LoadedModel.load(Files.write(dir.resolve("plain.gguf"), model), null);
        assertArrayEquals(b.tokenizer().encode("abc ab", true, false), a.tokenizer().encode("abc ab", true, false));
        try (Session sa = Session.reference(a.model()); Session sb = Session.reference(b.model())) {
            assertArrayEquals(sb.step(1), sa.step(1));
        }
    }

    /** TinyModel's F32 GGUF, with the metadata of {@code w} (which started from its header). */
    private static byte[] withMetadata(TinyModel t, GgufWriter w) {
        int kvDim = TinyModel.DIM / TinyModel.HEADS * TinyModel.KV_HEADS;
        w.f32Tensor("token_embd.weight", t.emb, TinyModel.DIM, t.vocab);
        for (int l = 0; l < TinyModel.LAYERS; l++) {
            String p = "blk." + l + ".";
            w.f32Tensor(p + "attn_norm.weight", t.rmsAtt[l], TinyModel.DIM);
            w.f32Tensor(p + "attn_q.weight", t.wq[l], TinyModel.DIM, TinyModel.DIM);
            w.f32Tensor(p + "attn_k.weight", t.wk[l], TinyModel.DIM, kvDim);
            w.f32Tensor(p + "attn_v.weight", t.wv[l], TinyModel.DIM, kvDim);
            w.f32Tensor(p + "attn_output.weight", t.wo[l], TinyModel.DIM, TinyModel.DIM);
            w.f32Tensor(p + "ffn_norm.weight", t.rmsFfn[l], TinyModel.DIM);
            w.f32Tensor(p + "ffn_gate.weight", t.w1[l], TinyModel.DIM, TinyModel.HIDDEN);
            w.f32Tensor(p + "ffn_down.weight", t.w2[l], TinyModel.HIDDEN, TinyModel.DIM);
            w.f32Tensor(p + "ffn_up.weight", t.w3[l], TinyModel.DIM, TinyModel.HIDDEN);
        }
        w.f32Tensor("output_norm.weight", t.rmsFinal, TinyModel.DIM);
        return w.build();
    }

    @Test
    void theReviewersSparseFileOfEmptyStringArraysIsSkippedWithoutMaterialisingAnything() throws IOException {
        // three arrays each claiming 4M empty strings: 96 MiB apparent, a few KB on disk; the old parser built 4M
        // String objects per array (it ran out of memory on 60 of them)
        int arrays = 3;
        long n = GgufFile.MAX_ARRAY_ELEMENTS;
        Path p = dir.resolve("sparse.gguf");
        try (FileChannel c = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.wrap(header(arrays)));
            for (int i = 0; i < arrays; i++) {
                c.write(ByteBuffer.wrap(arrayHead("a" + i, 8, n)));
                c.position(c.position() + 8 * n);   // 4M zero lengths, left as a hole
            }
            c.write(ByteBuffer.wrap(new byte[1]), c.position() - 1);
        }
        try (ModelFile f = ModelFile.open(p)) {
            GgufFile g = parse(f);
            for (int i = 0; i < arrays; i++) {
                GgufFile.Array a = (GgufFile.Array) g.metadata().get("a" + i);
                assertEquals(n, a.length());
                assertNull(a.values());
            }
        }
        // and the loader reports what is missing, not an OutOfMemoryError
        assertMessage(assertThrows(ModelFormatException.class, () -> LoadedModel.load(p, null)),
                "metadata general.architecture is missing");
    }

    @Test
    void aSkippedStringLongerThanTheFileIsRejected() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(24 + arrayHead("x", 8, 2).length + 16).order(ByteOrder.LITTLE_ENDIAN);
        b.put(header(1)).put(arrayHead("x", 8, 2)).putLong(0).putLong(1L << 40);
        Path p = Files.write(dir.resolve("long.gguf"), b.array());
        try (ModelFile f = ModelFile.open(p)) {
            assertMessage(assertThrows(ModelFormatException.class, () -> parse(f)),
                    "x[1] claims a length of 1099511627776 bytes, allowed [0, 0]");
        }
    }

    @Test
    void readArraysTakingMoreHeapThanTheFileAreRefusedByTheBudget() throws IOException {
        // 2M uint8 "scores": 2 MiB in the file, 16 MiB as longs, more than the file's length + 1 MiB
        int n = 2 << 20;
        GgufWriter w = new GgufWriter().string("general.architecture", "llama")
                .array("tokenizer.ggml.scores", 0, n, new byte[n]);
        Path p = Files.write(dir.resolve("budget.gguf"), w.build());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> LoadedModel.load(p, null));
        assertMessage(e, "budget.gguf", "array tokenizer.ggml.scores would take " + 8L * n + " bytes in memory",
                "metadata arrays' budget (" + (Files.size(p) + (1 << 20)) + " bytes: the file's length + 1048576)");
    }

    @Test
    void readArraysOfTheWrongTypeAreNamedWithTheTypeExpected() throws IOException {
        TinyModel t = new TinyModel(13);
        byte[] ints = new byte[4 * t.vocab];
        GgufWriter w = new GgufWriter().string("general.architecture", "llama")
                .array("tokenizer.ggml.scores", 5, t.vocab, ints);
        Path p = Files.write(dir.resolve("int-scores.gguf"), w.build());
        try (ModelFile f = ModelFile.open(p)) {
            GgufFile g = parse(f);
            assertMessage(assertThrows(ModelFormatException.class, () -> g.requireFloats("tokenizer.ggml.scores")),
                    "metadata tokenizer.ggml.scores is an array of " + t.vocab + " int32, expected an array of float32");
            assertMessage(assertThrows(ModelFormatException.class, () -> g.requireStrings("tokenizer.ggml.tokens")),
                    "metadata tokenizer.ggml.tokens is missing");
        }
    }
}
