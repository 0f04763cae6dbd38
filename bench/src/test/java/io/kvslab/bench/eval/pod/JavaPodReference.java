package io.kvslab.bench.eval.pod;

import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.ModelConfig;

/**
 * An independent plain-Java PoD cache for tests: keys and values in heap arrays ([layer][position][kvDim]), no
 * store, no kernel. Until sharing starts it is dense causal attention. Afterwards a decode query at position t of
 * layer l, KV head h, with base layer a = base[h][l] uses, for every position in a block (of {@code tokensPerBlock}
 * positions, counted from 0) that is full and wholly inside [n_s, t - n_r], the base layer's key and, for v1, the base
 * layer's query of the same token; all other positions use layer l's own key and query. Values are always layer
 * l's. One softmax in double.
 */
final class JavaPodReference implements KvCache {
    private final ModelConfig c;
    private final int[][] base;
    private final int sinks;
    private final int recent;
    private final int tokensPerBlock;
    private final boolean v1;
    private final float[][][] k;
    private final float[][][] v;
    private final float[][] queries;   // this token's query per layer
    private final int[] length;
    private boolean sharing;

    JavaPodReference(ModelConfig c, int[][] base, int sinks, int recent, int tokensPerBlock, boolean v1) {
        this.c = c;
        this.base = base;
        this.sinks = sinks;
        this.recent = recent;
        this.tokensPerBlock = tokensPerBlock;
        this.v1 = v1;
        this.k = new float[c.layers()][c.contextLength()][];
        this.v = new float[c.layers()][c.contextLength()][];
        this.queries = new float[c.layers()][c.dim()];
        this.length = new int[c.layers()];
    }

    void startSharing() {
        sharing = true;
    }

    private boolean distant(int p, int tokens, long t) {
        int b = p / tokensPerBlock;
        int first = b * tokensPerBlock;
        int last = first + tokensPerBlock - 1;
        return sharing && last < tokens && first >= sinks && last <= t - recent;
    }

    @Override
    public void attend(int layer, float[] q, float[] kk, float[] vv, long[] positions, int n, float[] out) {
        int kvDim = c.kvDim();
        int hs = c.headDim();
        int dim = c.dim();
        for (int i = 0; i < n; i++) {
            k[layer][length[layer]] = java.util.Arrays.copyOfRange(kk, i * kvDim, (i + 1) * kvDim);
            v[layer][length[layer]] = java.util.Arrays.copyOfRange(vv, i * kvDim, (i + 1) * kvDim);
            length[layer]++;
        }
        if (n == 1) {
            System.arraycopy(q, 0, queries[layer], 0, dim);
        }
        double scale = 1 / Math.sqrt(hs);
        for (int i = 0; i < n; i++) {
            int visible = length[layer] - n + i + 1;
            long t = positions[i];
            for (int qh = 0; qh < c.heads(); qh++) {
                int h = qh / c.groupSize();
                int a = base[h][layer];
                // Independent double-precision oracle on purpose: it is the test's reference for PodKvCache's
                // distant-key remapping (keys and queries borrowed from the anchor layer), which no shared class does.
                double[] s = new double[visible];
                double max = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < visible; p++) {
                    boolean d = n == 1 && distant(p, length[layer], t);
                    float[] key = k[d ? a : layer][p];
                    float[] query = d && v1 ? queries[a] : q;
                    int qo = d && v1 ? qh * hs : i * dim + qh * hs;
                    double dot = 0;
                    for (int x = 0; x < hs; x++) {
                        dot += (double) query[qo + x] * key[h * hs + x];
                    }
                    s[p] = dot * scale;
                    max = Math.max(max, s[p]);
                }
                double sum = 0;
                double[] o = new double[hs];
                for (int p = 0; p < visible; p++) {
                    double w = Math.exp(s[p] - max);
                    sum += w;
                    for (int x = 0; x < hs; x++) {
                        o[x] += w * v[layer][p][h * hs + x];
                    }
                }
                for (int x = 0; x < hs; x++) {
                    out[i * dim + qh * hs + x] = (float) (o[x] / sum);
                }
            }
        }
    }

    @Override
    public void close() {
    }
}
