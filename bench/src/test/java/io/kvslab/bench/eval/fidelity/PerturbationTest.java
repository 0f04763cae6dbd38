package io.kvslab.bench.eval.fidelity;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.policy.Budget;
import io.kvslab.policy.HeadSnapshot;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Selection;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Perturbation} against an independent reference: the attention outputs come from the library's native
 * decode kernel over a store that holds only the kept rows (one store per (layer, KV head), the continuation rows
 * appended one at a time as decoding does), and the projection is the full W_o product of the output vector with
 * every other head zeroed, instead of Perturbation's per-head double loops. Also the head-by-head comparison on
 * hand-made values, where a sign error would count the wrong heads.
 */
class PerturbationTest {
    private static final int CONTEXT = 64;
    private static final int CONTINUATION = 8;

    @Test
    void perturbationMatchesTheKernelOverAStoreHoldingOnlyTheKeptRows() {
        LoadedModel m = SharedModels.bin();
        LlamaModel model = m.model();
        ModelConfig c = model.config();
        int[] tokens = Arrays.copyOf(EvalTextSet.load().stories().get(0).tokens(m.tokenizer().bos()),
                CONTEXT + CONTINUATION);
        FullRun full = FullRun.run(model, 8, new ReferenceAttention(), tokens, CONTEXT, 16, KvDtypes.F32);
        float[][] wo = new float[c.layers()][];
        for (int l = 0; l < c.layers(); l++) {
            wo[l] = model.weights().wo(l);
        }
        Perturbation perturbation = new Perturbation(full, wo, c.heads(), c.headDim());
        try (Compressor ws = new Compressor()) {
            for (String name : List.of("snapkv", "streamingllm")) {
                Selection sel = Policies.byName(name).withWindowScoring(16, io.kvslab.policy.WindowPooling.MAX, 7)
                        .select(full.atContext, Budget.fraction(0.25), ws);
                double[][] measured = perturbation.of(sel);
                double[][] reference = reference(full, sel, wo, c);
                double largest = 0;
                for (int l = 0; l < c.layers(); l++) {
                    for (int h = 0; h < c.heads(); h++) {
                        largest = Math.max(largest, reference[l][h]);
                        assertEquals(reference[l][h], measured[l][h], 1e-4 + 1e-3 * reference[l][h],
                                name + " layer " + l + " head " + h);
                    }
                }
                assertTrue(largest > 1e-3, name + ": evicting 75% of the rows must perturb some head");
            }
        }
    }

    /** [layer][queryHead]: mean over continuation steps of the L1 norm of (o - o') for that head through all of W_o. */
    private static double[][] reference(FullRun full, Selection sel, float[][] wo, ModelConfig c) {
        int d = c.headDim();
        int group = c.heads() / c.kvHeads();
        int dim = c.heads() * d;
        int modelDim = wo[0].length / dim;
        double[][] out = new double[c.layers()][c.heads()];
        try (Attention attention = Attention.create(1)) {
            for (int l = 0; l < c.layers(); l++) {
                for (int kvh = 0; kvh < c.kvHeads(); kvh++) {
                    HeadSnapshot rows = full.rows[l][kvh];
                    int[] all = java.util.stream.IntStream.range(0, CONTEXT).toArray();
                    float[][] o = outputs(attention, rows, all, full, l, kvh, group, d);
                    float[][] o2 = outputs(attention, rows, sel.kept(l, kvh), full, l, kvh, group, d);
                    for (int g = 0; g < group; g++) {
                        int h = kvh * group + g;
                        double sum = 0;
                        for (int t = 0; t < CONTINUATION; t++) {
                            double[] u = new double[dim];
                            for (int j = 0; j < d; j++) {
                                u[h * d + j] = o[t][g * d + j] - o2[t][g * d + j];
                            }
                            for (int k = 0; k < modelDim; k++) {
                                double y = 0;
                                for (int j = 0; j < dim; j++) {
                                    y += wo[l][k * dim + j] * u[j];
                                }
                                sum += Math.abs(y);
                            }
                        }
                        out[l][h] = sum / CONTINUATION;
                    }
                }
            }
        }
        return out;
    }

    /** [t][group * d]: the group's outputs for each continuation query over {@code context} rows plus rows 0..t. */
    private static float[][] outputs(Attention attention, HeadSnapshot rows, int[] context, FullRun full, int l,
                                     int kvh, int group, int d) {
        float[][] out = new float[CONTINUATION][group * d];
        try (KvStore store = KvStore.open(new KvLayout(1, group, 1, d, DType.F32, 8))) {
            Sequence seq = store.newSequence();
            for (int r : context) {
                append(seq, rows, r, d);
            }
            for (int t = 0; t < CONTINUATION; t++) {
                append(seq, rows, CONTEXT + t, d);
                float[] q = Arrays.copyOfRange(full.continuationQueries[l][t], kvh * group * d, (kvh + 1) * group * d);
                attention.decode(seq, 0, q, out[t]);
            }
            seq.close();
        }
        return out;
    }

    private static void append(Sequence seq, HeadSnapshot rows, int r, int d) {
        seq.append(0, Arrays.copyOfRange(rows.keys(), r * d, (r + 1) * d),
                Arrays.copyOfRange(rows.values(), r * d, (r + 1) * d), rows.positions()[r]);
    }

    @Test
    void headComparisonCountsTheHeadsWhereThePolicyPerturbsLess() {
        // 1 layer x 3 heads, two texts: head 0 lower on both, head 1 equal, head 2 higher on average
        List<double[][]> crit = List.of(new double[][]{{1, 2, 5}}, new double[][]{{1, 3, 1}});
        List<double[][]> base = List.of(new double[][]{{2, 2, 1}}, new double[][]{{3, 3, 2}});
        HeadComparison h = FidelityEval.compare("criticalkv", "snapkv", "25%", "continuation", crit, base);
        assertEquals(3, h.heads());
        assertEquals(1, h.lower());
        assertEquals(1, h.equal());
        assertEquals(6, h.instances());
        assertEquals(3, h.instancesLower(), "head 0 twice, head 2 on the second text");
        assertEquals(2, h.instancesEqual());
        assertEquals(3.0 / 4, h.instanceFractionLowerWhereDifferent(), 1e-12);
    }
}
