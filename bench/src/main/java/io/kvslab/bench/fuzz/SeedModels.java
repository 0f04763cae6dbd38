package io.kvslab.bench.fuzz;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Small valid model files for the fuzzer's seeds, written here from the format specifications (not by the loaders under
 * test): two GGUF files of a tiny llama (one all-F32 with a separate classifier, one F16 / Q8_0 sharing the embedding)
 * and a llama2.c checkpoint with its tokenizer. A few kilobytes each, so a case loads in microseconds.
 */
final class SeedModels {
    private SeedModels() {}

    /** Geometry of a tiny llama. */
    record Geometry(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int context) {
        int kvDim() {
            return dim / heads * kvHeads;
        }
    }

    static final Geometry F32_MODEL = new Geometry(8, 16, 2, 2, 1, 12, 16);
    static final Geometry QUANTISED_MODEL = new Geometry(32, 32, 1, 4, 2, 8, 16);

    static List<String> tokens(int vocab) {
        List<String> t = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int i = 3; i < vocab; i++) {
            t.add(String.valueOf((char) ('a' + i - 3)));
        }
        return t;
    }

    private static float[] weights(Random r, long n, float scale) {
        float[] a = new float[(int) n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian() * scale;
        }
        return a;
    }

    // ------------------------------------------------------------------ GGUF

    /** Tensor element types the seeds use, by GGUF id. */
    private static final int F32 = 0;
    private static final int F16 = 1;
    private static final int Q8_0 = 8;

    private record Tensor(String name, long[] dims, int type, byte[] data) {}

    private static final class Gguf {
        final ByteArrayOutputStream meta = new ByteArrayOutputStream();
        int kv;
        final List<Tensor> tensors = new ArrayList<>();

        static byte[] le(int n, java.util.function.Consumer<ByteBuffer> fill) {
            ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
            fill.accept(b);
            return b.array();
        }

        static void str(ByteArrayOutputStream out, String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.writeBytes(le(8, x -> x.putLong(b.length)));
            out.writeBytes(b);
        }

        Gguf key(String k, int type) {
            str(meta, k);
            meta.writeBytes(le(4, x -> x.putInt(type)));
            kv++;
            return this;
        }

        Gguf u32(String k, int v) {
            key(k, 4);
            meta.writeBytes(le(4, x -> x.putInt(v)));
            return this;
        }

        Gguf f32(String k, float v) {
            key(k, 6);
            meta.writeBytes(le(4, x -> x.putFloat(v)));
            return this;
        }

        Gguf string(String k, String v) {
            key(k, 8);
            str(meta, v);
            return this;
        }

        Gguf strings(String k, List<String> v) {
            key(k, 9);
            meta.writeBytes(le(12, x -> x.putInt(8).putLong(v.size())));
            v.forEach(s -> str(meta, s));
            return this;
        }

        Gguf floats(String k, float[] v) {
            key(k, 9);
            meta.writeBytes(le(12, x -> x.putInt(6).putLong(v.length)));
            for (float f : v) {
                meta.writeBytes(le(4, x -> x.putFloat(f)));
            }
            return this;
        }

        void tensor(String name, int type, float[] v, long... dims) {
            byte[] data = switch (type) {
                case F32 -> le(4 * v.length, x -> {
                    for (float f : v) {
                        x.putFloat(f);
                    }
                });
                case F16 -> le(2 * v.length, x -> {
                    for (float f : v) {
                        x.putShort(Float.floatToFloat16(f));
                    }
                });
                case Q8_0 -> le(34 * (v.length / 32), x -> {
                    for (int b = 0; b < v.length / 32; b++) {
                        float amax = 0;
                        for (int i = 0; i < 32; i++) {
                            amax = Math.max(amax, Math.abs(v[b * 32 + i]));
                        }
                        float d = amax / 127f;
                        x.putShort(Float.floatToFloat16(d));
                        for (int i = 0; i < 32; i++) {
                            x.put((byte) Math.round(d == 0 ? 0 : v[b * 32 + i] / d));
                        }
                    }
                });
                default -> throw new IllegalArgumentException("type " + type);
            };
            tensors.add(new Tensor(name, dims, type, data));
        }

        byte[] build() {
            int align = GgufStructure.ALIGNMENT;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(le(24, x -> x.putInt(0x46554747).putInt(3).putLong(tensors.size()).putLong(kv)));
            out.writeBytes(meta.toByteArray());
            long offset = 0;
            for (Tensor t : tensors) {
                str(out, t.name());
                out.writeBytes(le(4, x -> x.putInt(t.dims().length)));
                for (long d : t.dims()) {
                    out.writeBytes(le(8, x -> x.putLong(d)));
                }
                long off = offset;
                out.writeBytes(le(12, x -> x.putInt(t.type()).putLong(off)));
                offset += (t.data().length + align - 1) / align * align;
            }
            for (Tensor t : tensors) {
                while (out.size() % align != 0) {
                    out.write(0);
                }
                out.writeBytes(t.data());
            }
            while (out.size() % align != 0) {
                out.write(0);
            }
            return out.toByteArray();
        }
    }

    /** A tiny llama as GGUF: matrices of {@code matrixType} (F32, F16 or Q8_0), norms F32. */
    static byte[] gguf(Geometry g, int matrixType, int embeddingType, boolean separateClassifier, long seed) {
        Random r = new Random(seed);
        List<String> tokens = tokens(g.vocab());
        float[] scores = new float[g.vocab()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = -i;
        }
        Gguf w = new Gguf().string("general.architecture", "llama")
                .u32("llama.context_length", g.context()).u32("llama.embedding_length", g.dim())
                .u32("llama.feed_forward_length", g.hidden()).u32("llama.block_count", g.layers())
                .u32("llama.attention.head_count", g.heads()).u32("llama.attention.head_count_kv", g.kvHeads())
                .u32("llama.rope.dimension_count", g.dim() / g.heads())
                .f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .string("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", tokens)
                .floats("tokenizer.ggml.scores", scores).u32("tokenizer.ggml.bos_token_id", 1)
                .u32("tokenizer.ggml.eos_token_id", 2);
        int dim = g.dim();
        int kvDim = g.kvDim();
        int hidden = g.hidden();
        w.tensor("token_embd.weight", embeddingType, weights(r, (long) dim * g.vocab(), 1f), dim, g.vocab());
        for (int l = 0; l < g.layers(); l++) {
            String p = "blk." + l + ".";
            w.tensor(p + "attn_norm.weight", F32, weights(r, dim, 0.1f), dim);
            w.tensor(p + "attn_q.weight", matrixType, weights(r, (long) dim * dim, 0.3f), dim, dim);
            w.tensor(p + "attn_k.weight", matrixType, weights(r, (long) dim * kvDim, 0.3f), dim, kvDim);
            w.tensor(p + "attn_v.weight", matrixType, weights(r, (long) dim * kvDim, 0.3f), dim, kvDim);
            w.tensor(p + "attn_output.weight", matrixType, weights(r, (long) dim * dim, 0.3f), dim, dim);
            w.tensor(p + "ffn_norm.weight", F32, weights(r, dim, 0.1f), dim);
            w.tensor(p + "ffn_gate.weight", matrixType, weights(r, (long) dim * hidden, 0.3f), dim, hidden);
            w.tensor(p + "ffn_down.weight", matrixType, weights(r, (long) hidden * dim, 0.3f), hidden, dim);
            w.tensor(p + "ffn_up.weight", matrixType, weights(r, (long) dim * hidden, 0.3f), dim, hidden);
        }
        w.tensor("output_norm.weight", F32, weights(r, dim, 0.1f), dim);
        if (separateClassifier) {
            w.tensor("output.weight", matrixType, weights(r, (long) dim * g.vocab(), 1f), dim, g.vocab());
        }
        return w.build();
    }

    /** The two GGUF seeds: all-F32 with a classifier; F16 embedding and Q8_0 matrices sharing the embedding. */
    static List<byte[]> ggufSeeds() {
        return List.of(gguf(F32_MODEL, F32, F32, true, 1), gguf(QUANTISED_MODEL, Q8_0, F16, false, 2));
    }

    // ------------------------------------------------------------------ llama2.c

    /** A llama2.c checkpoint (version 0): 7-int header, the tensors in llama2.c's order, RoPE tables, classifier. */
    static byte[] llama2c(Geometry g, boolean shared, long seed) {
        Random r = new Random(seed);
        int dim = g.dim();
        long kvDim = g.kvDim();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(Gguf.le(28, x -> x.putInt(dim).putInt(g.hidden()).putInt(g.layers()).putInt(g.heads())
                .putInt(g.kvHeads()).putInt(shared ? g.vocab() : -g.vocab()).putInt(g.context())));
        long layers = g.layers();
        long[] sizes = {
                (long) g.vocab() * dim, layers * dim, layers * dim * dim, layers * dim * kvDim, layers * dim * kvDim,
                layers * dim * dim, layers * dim, layers * dim * g.hidden(), layers * g.hidden() * dim,
                layers * dim * g.hidden(), dim, (long) g.context() * (dim / g.heads()), shared ? 0 : (long) g.vocab() * dim};
        for (long n : sizes) {
            float[] v = weights(r, n, 0.3f);
            out.writeBytes(Gguf.le(4 * v.length, x -> {
                for (float f : v) {
                    x.putFloat(f);
                }
            }));
        }
        return out.toByteArray();
    }

    /** llama2.c's tokenizer file for {@link #tokens}: max_token_length, then per token score, length, bytes. */
    static byte[] llama2cTokenizer(int vocab) {
        List<String> tokens = tokens(vocab);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int max = tokens.stream().mapToInt(t -> t.getBytes(StandardCharsets.UTF_8).length).max().orElse(1);
        out.writeBytes(Gguf.le(4, x -> x.putInt(max)));
        for (int i = 0; i < vocab; i++) {
            byte[] b = tokens.get(i).getBytes(StandardCharsets.UTF_8);
            float score = -i;
            out.writeBytes(Gguf.le(8, x -> x.putFloat(score).putInt(b.length)));
            out.writeBytes(b);
        }
        return out.toByteArray();
    }
}
