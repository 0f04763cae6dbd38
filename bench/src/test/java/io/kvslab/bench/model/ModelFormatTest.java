package io.kvslab.bench.model;

import io.kvslab.bench.eval.TeacherForcing;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The loaders agree with each other and with the values written: .bin vs GGUF, F32 vs F16 vs Q8_0. */
class ModelFormatTest {
    @TempDir
    Path dir;

    private Path write(String name, byte[] b) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, b);
        return p;
    }

    private static int[] someTokens(int vocab, int n) {
        int[] t = new int[n];
        t[0] = 1;
        for (int i = 1; i < n; i++) {
            t[i] = (int) ((i * 2654435761L) % vocab);
        }
        return t;
    }

    private static float[][] logits(LlamaModel m, int[] tokens, int prefill) {
        try (Session s = Session.reference(m)) {
            return TeacherForcing.run(s, tokens, prefill, null);
        }
    }

    private static void assertBitwise(float[][] a, float[][] b) {
        assertEquals(a.length, b.length);
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                assertEquals(Float.floatToRawIntBits(a[i][j]), Float.floatToRawIntBits(b[i][j]), "step " + i + " logit " + j);
            }
        }
    }

    @Test
    void stories260KBinAndGgufHoldTheSameModel() {
        LlamaModel bin = SharedModels.bin().model();
        LlamaModel gguf = SharedModels.gguf().model();
        ModelConfig b = bin.config();
        ModelConfig g = gguf.config();
        assertEquals(new ModelConfig(64, 172, 5, 8, 4, 512, 512, 10000f, 1e-5f), b);
        // the GGUF metadata claims a 2048-token context; everything else is identical
        assertEquals(2048, g.contextLength());
        assertEquals(b, new ModelConfig(g.dim(), g.hiddenDim(), g.layers(), g.heads(), g.kvHeads(), g.vocabSize(), 512,
                g.ropeTheta(), g.normEps()));
        assertTrue(bin.weights().sharedClassifier());
        assertFalse(gguf.weights().sharedClassifier());
        assertTrue(bin.weights().bitwiseEquals(gguf.weights()), "every tensor bit-identical");
    }

    @Test
    void stories260KBinAndGgufGiveBitwiseIdenticalLogits() {
        int[] tokens = SharedModels.bin().tokenizer().encode("Once upon a time, a little dog found a red ball.", true, false);
        assertBitwise(logits(SharedModels.bin().model(), tokens, 5), logits(SharedModels.gguf().model(), tokens, 5));
    }

    @Test
    void tinyModelAsLlama2cAndAsF32GgufIsTheSame() throws IOException {
        TinyModel t = new TinyModel(11);
        LoadedModel bin = LoadedModel.load(write("tiny.bin", t.llama2c(false)), write("tok.bin", t.tokenizer()));
        LoadedModel gguf = LoadedModel.load(write("tiny.gguf", t.gguf(TinyModel.Kind.F32, true)), null);
        assertTrue(bin.model().weights().bitwiseEquals(gguf.model().weights()));
        assertArrayEquals(t.wo[1], gguf.model().weights().wo(1));
        assertArrayEquals(t.cls, bin.model().weights().classifier());
        int[] tokens = someTokens(t.vocab, 20);
        assertBitwise(logits(bin.model(), tokens, 7), logits(gguf.model(), tokens, 7));
        for (int id = 3; id < t.vocab; id++) {
            assertArrayEquals(bin.tokenizer().piece(id), gguf.tokenizer().piece(id));
        }
        assertArrayEquals(bin.tokenizer().encode("abc ab", true, false), gguf.tokenizer().encode("abc ab", true, false));
    }

    @Test
    void sharedClassifierWhenGgufHasNoOutputTensor() throws IOException {
        TinyModel t = new TinyModel(12);
        LoadedModel shared = LoadedModel.load(write("shared.gguf", t.gguf(TinyModel.Kind.F32, false)), null);
        LoadedModel bin = LoadedModel.load(write("shared.bin", t.llama2c(true)), write("tok.bin", t.tokenizer()));
        assertTrue(shared.model().weights().sharedClassifier());
        assertTrue(bin.model().weights().sharedClassifier());
        assertTrue(bin.model().weights().bitwiseEquals(shared.model().weights()));
    }

    @Test
    void f16TensorsLoadAsTheirHalfPrecisionValues() throws IOException {
        TinyModel t = new TinyModel(13);
        LoadedModel half = LoadedModel.load(write("f16.gguf", t.gguf(TinyModel.Kind.F16, true)), null);
        float[] wo = half.model().weights().wo(0);
        for (int i = 0; i < wo.length; i++) {
            assertEquals(Float.float16ToFloat(Float.floatToFloat16(t.wo[0][i])), wo[i]);
        }
        // a model whose F32 weights are those rounded values computes the same logits bit for bit
        TinyModel rounded = new TinyModel(13);
        for (float[][] m : new float[][][]{rounded.wq, rounded.wk, rounded.wv, rounded.wo, rounded.w1, rounded.w2, rounded.w3}) {
            for (float[] a : m) {
                roundToHalf(a);
            }
        }
        roundToHalf(rounded.emb);
        roundToHalf(rounded.cls);
        LoadedModel f32 = LoadedModel.load(write("rounded.gguf", rounded.gguf(TinyModel.Kind.F32, true)), null);
        int[] tokens = someTokens(t.vocab, 16);
        assertBitwise(logits(f32.model(), tokens, 16), logits(half.model(), tokens, 16));
    }

    private static void roundToHalf(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = Float.float16ToFloat(Float.floatToFloat16(a[i]));
        }
    }

    @Test
    void q8_0TensorsDequantizeBlockByBlock() throws IOException {
        TinyModel t = new TinyModel(14);
        LoadedModel q8 = LoadedModel.load(write("q8.gguf", t.gguf(TinyModel.Kind.Q8_0, true)), null);
        float[] wq = q8.model().weights().wq(1);
        float[] orig = t.wq[1];
        for (int b = 0; b < orig.length / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) {
                amax = Math.max(amax, Math.abs(orig[b * 32 + i]));
            }
            float d = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            for (int i = 0; i < 32; i++) {
                float q = wq[b * 32 + i] / d;
                assertEquals(Math.round(q), q, 1e-4, "a multiple of the block scale");
                assertEquals(orig[b * 32 + i], wq[b * 32 + i], d * 0.6f, "within half a step");
            }
        }
        // quantized logits stay close to full precision ones on this random model
        int[] tokens = someTokens(t.vocab, 12);
        LoadedModel f32 = LoadedModel.load(write("f32.gguf", t.gguf(TinyModel.Kind.F32, true)), null);
        float[][] a = logits(f32.model(), tokens, 12);
        float[][] b = logits(q8.model(), tokens, 12);
        double maxDiff = 0;
        double maxAbs = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                maxDiff = Math.max(maxDiff, Math.abs(a[i][j] - b[i][j]));
                maxAbs = Math.max(maxAbs, Math.abs(a[i][j]));
            }
        }
        assertTrue(maxDiff > 0 && maxDiff < 0.05 * maxAbs, "Q8_0 logits differ slightly from F32: " + maxDiff
                + " of logits up to " + maxAbs);
    }
}
