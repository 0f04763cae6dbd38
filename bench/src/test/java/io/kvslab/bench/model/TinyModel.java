package io.kvslab.bench.model;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A small random Llama model for format tests: dim 32, hidden 64 (rows of 32 so Q8_0 applies), 2 layers, 4 query
 * heads over 2 kv heads, context 24, and a vocabulary of 3 specials, 256 byte pieces and a few merges. It can be
 * written as a llama2.c checkpoint + tokenizer or as GGUF with F32, F16 or Q8_0 tensors.
 */
final class TinyModel {
    static final int DIM = 32;
    static final int HIDDEN = 64;
    static final int LAYERS = 2;
    static final int HEADS = 4;
    static final int KV_HEADS = 2;
    static final int CONTEXT = 24;
    static final String[] MERGES = {" ", "a", "b", "c", "ab", "bc", "abc", " a", " ab"};
    static final float[] MERGE_SCORES = {-1, -2, -3, -4, -5, -6, -7, -8, -9};

    final List<String> pieces = new ArrayList<>();
    final float[] scores;
    final int vocab;
    final float[] emb;
    final float[][] rmsAtt = new float[LAYERS][];
    final float[][] wq = new float[LAYERS][];
    final float[][] wk = new float[LAYERS][];
    final float[][] wv = new float[LAYERS][];
    final float[][] wo = new float[LAYERS][];
    final float[][] rmsFfn = new float[LAYERS][];
    final float[][] w1 = new float[LAYERS][];
    final float[][] w2 = new float[LAYERS][];
    final float[][] w3 = new float[LAYERS][];
    final float[] rmsFinal;
    final float[] cls;

    TinyModel(long seed) {
        pieces.add("<unk>");
        pieces.add("\n<s>\n");
        pieces.add("\n</s>\n");
        for (int b = 0; b < 256; b++) {
            pieces.add(String.format("<0x%02X>", b));
        }
        pieces.addAll(List.of(MERGES));
        vocab = pieces.size();
        scores = new float[vocab];
        System.arraycopy(MERGE_SCORES, 0, scores, 259, MERGES.length);
        Random r = new Random(seed);
        int kvDim = DIM / HEADS * KV_HEADS;
        emb = rand(r, vocab * DIM, 1f);
        for (int l = 0; l < LAYERS; l++) {
            rmsAtt[l] = norm(r, DIM);
            wq[l] = rand(r, DIM * DIM, 0.3f);
            wk[l] = rand(r, kvDim * DIM, 0.3f);
            wv[l] = rand(r, kvDim * DIM, 0.3f);
            wo[l] = rand(r, DIM * DIM, 0.3f);
            rmsFfn[l] = norm(r, DIM);
            w1[l] = rand(r, HIDDEN * DIM, 0.3f);
            w2[l] = rand(r, DIM * HIDDEN, 0.3f);
            w3[l] = rand(r, HIDDEN * DIM, 0.3f);
        }
        rmsFinal = norm(r, DIM);
        cls = rand(r, vocab * DIM, 1f);
    }

    private static float[] rand(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian() * scale;
        }
        return a;
    }

    private static float[] norm(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = 1f + 0.1f * (float) r.nextGaussian();
        }
        return a;
    }

    private static void floats(ByteArrayOutputStream out, float[]... arrays) {
        for (float[] a : arrays) {
            ByteBuffer b = ByteBuffer.allocate(4 * a.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : a) {
                b.putFloat(f);
            }
            out.writeBytes(b.array());
        }
    }

    /** llama2.c checkpoint; a shared classifier uses the embedding (the separate cls is then not written). */
    byte[] llama2c(boolean shared) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer h = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(DIM).putInt(HIDDEN).putInt(LAYERS).putInt(HEADS).putInt(KV_HEADS).putInt(shared ? vocab : -vocab).putInt(CONTEXT);
        out.writeBytes(h.array());
        floats(out, emb);
        floats(out, rmsAtt);
        floats(out, wq);
        floats(out, wk);
        floats(out, wv);
        floats(out, wo);
        floats(out, rmsFfn);
        floats(out, w1);
        floats(out, w2);
        floats(out, w3);
        floats(out, rmsFinal);
        floats(out, new float[CONTEXT * (DIM / HEADS)]); // legacy freq_cis_real + freq_cis_imag
        if (!shared) {
            floats(out, cls);
        }
        return out.toByteArray();
    }

    byte[] tokenizer() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int max = 0;
        for (String p : pieces) {
            max = Math.max(max, p.getBytes(StandardCharsets.UTF_8).length);
        }
        ByteBuffer m = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(max);
        out.writeBytes(m.array());
        for (int i = 0; i < vocab; i++) {
            byte[] b = pieces.get(i).getBytes(StandardCharsets.UTF_8);
            ByteBuffer e = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(scores[i]).putInt(b.length);
            out.writeBytes(e.array());
            out.writeBytes(b);
        }
        return out.toByteArray();
    }

    /** The GGUF metadata of this model (architecture llama) and its tokenizer, without tensors. */
    GgufWriter ggufHeader(String arch) {
        List<String> spm = pieces.stream().map(p -> p.replace(" ", "\u2581").replace("\n<s>\n", "<s>")
                .replace("\n</s>\n", "</s>")).toList();
        return new GgufWriter()
                .string("general.architecture", arch)
                .u32(arch + ".context_length", CONTEXT)
                .u32(arch + ".embedding_length", DIM)
                .u32(arch + ".feed_forward_length", HIDDEN)
                .u32(arch + ".block_count", LAYERS)
                .u32(arch + ".attention.head_count", HEADS)
                .u32(arch + ".attention.head_count_kv", KV_HEADS)
                .u32(arch + ".rope.dimension_count", DIM / HEADS)
                .f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f)
                .string("tokenizer.ggml.model", "llama")
                .strings("tokenizer.ggml.tokens", spm)
                .floats("tokenizer.ggml.scores", scores)
                .u32("tokenizer.ggml.bos_token_id", 1)
                .u32("tokenizer.ggml.eos_token_id", 2);
    }

    /** Tensor element type for {@link #gguf}. */
    enum Kind { F32, F16, Q8_0 }

    /** The whole model as GGUF with tensors of {@code kind} (norm vectors stay F32, as llama.cpp writes them). */
    byte[] gguf(Kind kind, boolean withOutput) {
        GgufWriter w = ggufHeader("llama");
        int kvDim = DIM / HEADS * KV_HEADS;
        matrix(w, kind, "token_embd.weight", emb, DIM, vocab);
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            w.f32Tensor(p + "attn_norm.weight", rmsAtt[l], DIM);
            matrix(w, kind, p + "attn_q.weight", wq[l], DIM, DIM);
            matrix(w, kind, p + "attn_k.weight", wk[l], DIM, kvDim);
            matrix(w, kind, p + "attn_v.weight", wv[l], DIM, kvDim);
            matrix(w, kind, p + "attn_output.weight", wo[l], DIM, DIM);
            w.f32Tensor(p + "ffn_norm.weight", rmsFfn[l], DIM);
            matrix(w, kind, p + "ffn_gate.weight", w1[l], DIM, HIDDEN);
            matrix(w, kind, p + "ffn_down.weight", w2[l], HIDDEN, DIM);
            matrix(w, kind, p + "ffn_up.weight", w3[l], DIM, HIDDEN);
        }
        w.f32Tensor("output_norm.weight", rmsFinal, DIM);
        if (withOutput) {
            matrix(w, kind, "output.weight", cls, DIM, vocab);
        }
        return w.build();
    }

    private static void matrix(GgufWriter w, Kind kind, String name, float[] v, long cols, long rows) {
        switch (kind) {
            case F32 -> w.f32Tensor(name, v, cols, rows);
            case F16 -> w.f16Tensor(name, v, cols, rows);
            case Q8_0 -> w.q8Tensor(name, v, cols, rows);
        }
    }
}
