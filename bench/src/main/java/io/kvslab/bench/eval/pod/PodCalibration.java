package io.kvslab.bench.eval.pod;

import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.model.AttentionObserver;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.LayerSimilarity;
import io.kvslab.pod.ModelFingerprint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * PoD's offline stage on a real model: attention maps of calibration texts -> {@link LayerSimilarity} -> grouping.
 *
 * <p><b>Calibration texts.</b> Stories the model samples from BOS on the reference path with seeds
 * {@value #FIRST_SEED}.. (temperature 1, top-p 0.9, at most 511 positions), so they are reproducible and disjoint from
 * the evaluation set (seeds 1..16).
 *
 * <p><b>Attention maps.</b> Each text is prefilled through a store cache; the observer keeps the RoPE-rotated
 * queries of the last {@code queries} positions of every layer, and after the prefill each query's causal attention
 * distribution (softmax of q.k / sqrt(d) over every earlier row and its own) is computed in double from the stored
 * keys, per (layer, query head). All layers of one query attend over the same positions, as the statistic needs.
 */
public final class PodCalibration {
    /** First sampler seed of the calibration texts. */
    public static final long FIRST_SEED = 1001;
    public static final int DEFAULT_TEXTS = 8;
    public static final int DEFAULT_QUERIES = 64;

    private PodCalibration() {
    }

    /**
     * The fingerprint of a model's weights: {@code weights-sha256:} and the first 16 hex digits of SHA-256 over its
     * geometry (not the context length), token embedding, every layer's W_q, W_k, W_v, W_o and the classifier (a
     * .bin and a .gguf of the same weights get the same fingerprint).
     */
    public static ModelFingerprint fingerprint(LlamaModel model) {
        ModelConfig c = model.config();
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            // the geometry and numerics that shape attention; not the context length (GGUF metadata may differ)
            String geometry = c.dim() + "," + c.hiddenDim() + "," + c.layers() + "," + c.heads() + "," + c.kvHeads()
                    + "," + c.vocabSize() + "," + c.ropeTheta() + "," + c.normEps();
            sha.update(geometry.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            update(sha, model.weights().tokenEmbedding());
            for (int l = 0; l < c.layers(); l++) {
                update(sha, model.weights().wq(l));
                update(sha, model.weights().wk(l));
                update(sha, model.weights().wv(l));
                update(sha, model.weights().wo(l));
            }
            update(sha, model.weights().classifier());
            String hex = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
            return new ModelFingerprint("weights-sha256:" + hex, c.layers(), c.heads(), c.kvHeads(), c.headDim());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }

    private static void update(MessageDigest sha, float[] x) {
        ByteBuffer b = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(x);
        sha.update(b.array());
    }

    /** {@code texts} calibration stories sampled with seeds FIRST_SEED, FIRST_SEED + 1, ... (BOS included). */
    public static List<int[]> texts(LoadedModel m, int texts) {
        long[] seeds = new long[texts];
        for (int i = 0; i < texts; i++) {
            seeds[i] = FIRST_SEED + i;
        }
        EvalTextSet set = EvalTextSet.sample(m, seeds, 1.0f, 0.9f, m.model().config().contextLength() - 1,
                "PodCalibration");
        List<int[]> out = new ArrayList<>();
        for (EvalTextSet.Story s : set.stories()) {
            out.add(s.tokens(m.tokenizer().bos()));
        }
        return out;
    }

    /** Layer similarities over the last {@code queries} positions of every text. */
    public static LayerSimilarity measure(LlamaModel model, List<int[]> texts, int queries) {
        ModelConfig c = model.config();
        LayerSimilarity sim = new LayerSimilarity(c.layers(), c.heads(), c.kvHeads());
        int dim = c.dim();
        int hs = c.headDim();
        int group = c.groupSize();
        for (int[] tokens : texts) {
            int n = tokens.length;
            int q = Math.min(queries, n);
            int first = n - q;
            float[][][] captured = new float[c.layers()][q][];
            AttentionObserver observer = (layer, positions, count, qs, out) -> {
                for (int t = 0; t < count; t++) {
                    long p = positions[t];
                    if (p >= first) {
                        captured[layer][(int) (p - first)] = java.util.Arrays.copyOfRange(qs, t * dim, (t + 1) * dim);
                    }
                }
            };
            KvLayout layout = new KvLayout(c.layers(), c.heads(), c.kvHeads(), hs, DType.F32, 16);
            try (KvStore store = KvStore.open(layout)) {
                Sequence seq = store.newSequence();
                try (Session s = new Session(model, new StoreKvCache(seq, new ReferenceAttention()), MatMul.JAVA,
                        Session.DEFAULT_CHUNK)) {
                    s.observer(observer);
                    s.prefill(tokens);
                    float[][][] keys = new float[c.layers()][c.kvHeads()][n * hs];
                    for (int l = 0; l < c.layers(); l++) {
                        for (int h = 0; h < c.kvHeads(); h++) {
                            seq.readKeys(l, h, keys[l][h]);
                        }
                    }
                    for (int i = 0; i < q; i++) {
                        int visible = first + i + 1;
                        double[][][] p = new double[c.layers()][c.heads()][];
                        for (int l = 0; l < c.layers(); l++) {
                            for (int h = 0; h < c.heads(); h++) {
                                p[l][h] = softmaxRow(captured[l][i], h * hs, keys[l][h / group], visible, hs);
                            }
                        }
                        sim.add(p);
                    }
                }
            }
        }
        return sim;
    }

    /** The attention weights of one query head: the shared {@link ReferenceAttention} arithmetic, widened. */
    private static double[] softmaxRow(float[] q, int qo, float[] k, int visible, int hs) {
        float[] att = new float[visible];
        ReferenceAttention.weights(q, qo, k, visible, hs, att);
        double[] p = new double[visible];
        for (int r = 0; r < visible; r++) {
            p[r] = att[r];
        }
        return p;
    }

    /** Calibrates the default way: {@link #DEFAULT_TEXTS} texts, {@link #DEFAULT_QUERIES} queries each. */
    public static LayerSimilarity measure(LoadedModel m) {
        return measure(m.model(), texts(m, DEFAULT_TEXTS), DEFAULT_QUERIES);
    }

    /** Groups at {@code delta} with the model's fingerprint. */
    public static LayerGrouping group(LayerSimilarity sim, LlamaModel model, double delta) {
        return sim.group(delta, fingerprint(model));
    }
}
