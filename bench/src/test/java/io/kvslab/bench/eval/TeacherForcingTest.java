package io.kvslab.bench.eval;

import io.kvslab.bench.model.AttentionObserver;
import io.kvslab.bench.model.KvBackend;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.DType;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TeacherForcingTest {
    private static int[] goldenStory() {
        SharedModels.Golden g = SharedModels.goldens().stream().filter(x -> x.file().startsWith("greedy-lily")).findFirst()
                .orElseThrow();
        int[] t = new int[g.ids().length + 1];
        t[0] = 1;
        System.arraycopy(g.ids(), 0, t, 1, g.ids().length);
        return t;
    }

    @Test
    void greedyStoryIsTheArgmaxOfItsTeacherForcedLogits() {
        LlamaModel m = SharedModels.bin().model();
        int[] tokens = goldenStory();
        int promptTokens = SharedModels.bin().tokenizer().encode("Lily and Ben went to the park", true, false).length;
        try (Session s = Session.reference(m)) {
            float[][] logits = TeacherForcing.run(s, tokens, 64, null);
            for (int i = promptTokens - 1; i < tokens.length - 1; i++) {
                assertEquals(tokens[i + 1], LogitMetrics.argmax(logits[i]), "greedy choice at step " + i);
            }
        }
    }

    @Test
    void prefillSplitDoesNotChangeTheReferenceLogits() {
        LlamaModel m = SharedModels.bin().model();
        int[] tokens = Arrays.copyOf(goldenStory(), 100);
        float[][] oneByOne;
        try (Session s = Session.reference(m)) {
            oneByOne = TeacherForcing.run(s, tokens, 1, null);
        }
        for (int prefill : new int[]{37, 100}) {
            try (Session s = Session.reference(m)) {
                float[][] l = TeacherForcing.run(s, tokens, prefill, null);
                for (int i = 0; i < tokens.length; i++) {
                    assertArrayEquals(oneByOne[i], l[i], "step " + i + " with a prefill of " + prefill);
                }
            }
        }
    }

    /**
     * The compression hook: after the prefill the caller evicts rows from the store sequence; the continuation then
     * diverges from the full-cache run, the prefill logits do not, and the store holds fewer bytes.
     */
    @ParameterizedTest
    @EnumSource(value = KvBackend.class, names = {"STORE", "STORE_JAVA"})
    void evictingAfterPrefillChangesOnlyTheContinuation(KvBackend backend) {
        LlamaModel m = SharedModels.bin().model();
        ModelConfig c = m.config();
        int[] tokens = Arrays.copyOf(goldenStory(), 200);
        int prefill = 150;
        float[][] full;
        try (Session s = new Session(m, backend.open(c, DType.F32), MatMul.JAVA, 32)) {
            full = TeacherForcing.run(s, tokens, prefill, null);
        }
        long[] live = new long[2];
        float[][] evicted;
        try (Session s = new Session(m, backend.open(c, DType.F32), MatMul.JAVA, 32)) {
            evicted = TeacherForcing.run(s, tokens, prefill, session -> {
                StoreKvCache cache = (StoreKvCache) session.cache();
                Sequence seq = cache.sequence();
                live[0] = cache.store().stats().liveBytes();
                for (int l = 0; l < c.layers(); l++) {
                    for (int h = 0; h < c.kvHeads(); h++) {
                        // keep the first 4 rows (attention sinks) and the last 28: a StreamingLLM-style window
                        int n = seq.length(l, h);
                        int[] keep = new int[32];
                        for (int i = 0; i < 32; i++) {
                            keep[i] = i < 4 ? i : n - 32 + i;
                        }
                        seq.keep(l, h, keep);
                        assertArrayEquals(new long[]{0, 1, 2, 3}, Arrays.copyOf(seq.positions(l, h), 4));
                        assertEquals(prefill - 1, seq.positions(l, h)[31]);
                    }
                }
                live[1] = cache.store().stats().liveBytes();
            });
        }
        assertTrue(live[1] < live[0], "eviction freed blocks: " + live[0] + " -> " + live[1]);
        for (int i = 0; i < prefill; i++) {
            assertArrayEquals(full[i], evicted[i], "prefill step " + i + " is computed before the hook");
        }
        RunComparison cmp = RunComparison.of(full, evicted, tokens, prefill, tokens.length);
        assertTrue(cmp.meanKl() > 0, "the continuation sees a smaller cache: " + cmp);
        assertTrue(cmp.top1Agreement() > 0.5, "but a sink + window cache keeps most predictions: " + cmp);
    }

    /** The observer sees each head's output o_h = softmax(q_h K^T / sqrt(d)) V over the rows the store holds. */
    @ParameterizedTest
    @EnumSource(value = KvBackend.class, names = {"STORE", "STORE_JAVA"})
    void observedAttentionOutputsMatchARecomputationFromTheStoredRows(KvBackend backend) {
        LlamaModel m = SharedModels.bin().model();
        ModelConfig c = m.config();
        int[] tokens = Arrays.copyOf(goldenStory(), 60);
        int hs = c.headDim();
        float[][] lastQ = new float[c.layers()][];
        float[][] lastOut = new float[c.layers()][];
        int[] calls = new int[1];
        AttentionObserver obs = (layer, positions, n, q, out) -> {
            calls[0]++;
            int t = n - 1;
            lastQ[layer] = Arrays.copyOfRange(q, t * c.dim(), (t + 1) * c.dim());
            lastOut[layer] = Arrays.copyOfRange(out, t * c.dim(), (t + 1) * c.dim());
            assertEquals(positions[0] + n - 1, positions[n - 1]);
        };
        try (Session s = new Session(m, backend.open(c, DType.F32), MatMul.JAVA, 16)) {
            s.observer(obs);
            TeacherForcing.run(s, tokens, 40, null);
            assertEquals(c.layers() * (3 + 20), calls[0], "one call per layer per chunk (3 chunks) and per decoded token");
            Sequence seq = ((StoreKvCache) s.cache()).sequence();
            for (int l = 0; l < c.layers(); l++) {
                for (int h = 0; h < c.heads(); h++) {
                    int kvh = h / c.groupSize();
                    int n = seq.length(l, kvh);
                    float[] k = new float[n * hs];
                    float[] v = new float[n * hs];
                    seq.readKeys(l, kvh, k);
                    seq.readValues(l, kvh, v);
                    // Independent double-precision oracle on purpose: STORE_JAVA runs the shared ReferenceAttention,
                    // so checking it with that same class could not fail.
                    double[] w = new double[n];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int r = 0; r < n; r++) {
                        double dot = 0;
                        for (int i = 0; i < hs; i++) {
                            dot += (double) lastQ[l][h * hs + i] * k[r * hs + i];
                        }
                        w[r] = dot / Math.sqrt(hs);
                        max = Math.max(max, w[r]);
                    }
                    double sum = 0;
                    for (int r = 0; r < n; r++) {
                        w[r] = Math.exp(w[r] - max);
                        sum += w[r];
                    }
                    for (int i = 0; i < hs; i++) {
                        double o = 0;
                        for (int r = 0; r < n; r++) {
                            o += w[r] / sum * v[r * hs + i];
                        }
                        assertEquals(o, lastOut[l][h * hs + i], 1e-5, "layer " + l + " head " + h + " dim " + i);
                    }
                }
            }
        }
        // W_o is exposed read-only: a copy per call
        float[] wo = m.weights().wo(0);
        wo[0] += 1;
        assertTrue(m.weights().wo(0)[0] != wo[0]);
    }
}
