package io.kvslab.policy;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.IntFunction;

/** Random but reproducible policy inputs, and sequences in a real store holding the same rows. */
final class Fixtures {
    private Fixtures() {
    }

    /** Shape of a test model. */
    record Shape(int layers, int queryHeads, int kvHeads, int headDim, int modelDim) {
        static Shape small() {
            return new Shape(3, 4, 2, 8, 16);
        }

        int group() {
            return queryHeads / kvHeads;
        }

        KvLayout layout(int tokensPerBlock) {
            return new KvLayout(layers, queryHeads, kvHeads, headDim, DType.F32, tokensPerBlock);
        }
    }

    /**
     * All the raw data of one sequence: per layer, per KV head, keys/values of the n tokens; per layer, the last w
     * tokens' queries and W_o. Keys get a per-row scale so attention is peaked on some rows (realistic and
     * tie-free).
     */
    record Data(Shape shape, int n, int window, float[][][] keys, float[][][] values, float[][] queries,
                float[][] wo, long[] positions) {
        static Data random(Shape s, int n, int window, long seed) {
            Random rnd = new Random(seed);
            int d = s.headDim();
            float[][][] k = new float[s.layers()][s.kvHeads()][n * d];
            float[][][] v = new float[s.layers()][s.kvHeads()][n * d];
            for (int l = 0; l < s.layers(); l++) {
                for (int h = 0; h < s.kvHeads(); h++) {
                    for (int t = 0; t < n; t++) {
                        float scale = (float) (0.5 + 2.5 * rnd.nextDouble());
                        for (int e = 0; e < d; e++) {
                            k[l][h][t * d + e] = (float) rnd.nextGaussian() * scale;
                            v[l][h][t * d + e] = (float) rnd.nextGaussian() * (float) (0.2 + rnd.nextDouble());
                        }
                    }
                }
            }
            int w = Math.min(window, n);
            float[][] q = new float[s.layers()][w * s.queryHeads() * d];
            float[][] wo = new float[s.layers()][s.modelDim() * s.queryHeads() * d];
            for (int l = 0; l < s.layers(); l++) {
                for (int i = 0; i < q[l].length; i++) {
                    q[l][i] = (float) rnd.nextGaussian() * 1.5f;
                }
                for (int i = 0; i < wo[l].length; i++) {
                    wo[l][i] = (float) rnd.nextGaussian() * 0.3f;
                }
            }
            long[] pos = new long[n];
            for (int t = 0; t < n; t++) {
                pos[t] = t;
            }
            return new Data(s, n, w, k, v, q, wo, pos);
        }

        long[] windowPositions() {
            return Arrays.copyOfRange(positions, n - window, n);
        }

        SequenceContext context() {
            List<LayerContext> layers = new ArrayList<>();
            for (int l = 0; l < shape.layers(); l++) {
                List<HeadSnapshot> heads = new ArrayList<>();
                for (int h = 0; h < shape.kvHeads(); h++) {
                    heads.add(new HeadSnapshot(keys[l][h], values[l][h], positions, shape.headDim()));
                }
                layers.add(new LayerContext(l, shape.queryHeads(), shape.headDim(), heads,
                        new LayerInputs(queries[l], windowPositions(), wo[l])));
            }
            return new SequenceContext(layers);
        }

        /** Appends the n tokens of every layer to a new sequence of {@code store}. */
        Sequence fill(KvStore store) {
            Sequence seq = store.newSequence();
            int d = shape.headDim();
            int width = shape.kvHeads() * d;
            for (int l = 0; l < shape.layers(); l++) {
                float[] kc = new float[n * width];
                float[] vc = new float[n * width];
                for (int t = 0; t < n; t++) {
                    for (int h = 0; h < shape.kvHeads(); h++) {
                        System.arraycopy(keys[l][h], t * d, kc, t * width + h * d, d);
                        System.arraycopy(values[l][h], t * d, vc, t * width + h * d, d);
                    }
                }
                seq.appendChunk(l, kc, vc, positions);
            }
            return seq;
        }

        /** The context as read back from the store, layer by layer (what a runner does). */
        SequenceContext context(Sequence seq) {
            List<LayerContext> layers = new ArrayList<>();
            IntFunction<LayerInputs> in = inputs();
            for (int l = 0; l < shape.layers(); l++) {
                layers.add(LayerContext.read(seq, l, in.apply(l)));
            }
            return new SequenceContext(layers);
        }

        /** The per-layer window queries and W_o for a compressor. */
        IntFunction<LayerInputs> inputs() {
            return l -> new LayerInputs(queries[l], windowPositions(), wo[l]);
        }
    }

    /** A one-layer context from explicit per-head arrays (for hand-computed cases). */
    static LayerContext layer(int queryHeads, int headDim, float[][] keys, float[][] values, long[] positions,
                              WindowQueries window, OutputProjection wo) {
        List<HeadSnapshot> heads = new ArrayList<>();
        for (int h = 0; h < keys.length; h++) {
            heads.add(new HeadSnapshot(keys[h], values[h], positions, headDim));
        }
        return new LayerContext(0, queryHeads, headDim, heads, new LayerInputs(window == null ? null : window.queries(),
                window == null ? null : window.positions(), wo == null ? null : wo.weights()));
    }

    static long[] range(int n) {
        long[] p = new long[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        return p;
    }
}
