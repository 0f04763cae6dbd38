package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;
import io.kvslab.policy.LayerInputs;
import io.kvslab.bench.eval.WholeContext;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Layer-at-a-time compression keeps exactly the rows whole-sequence compression keeps, for every named policy. */
class LayerAtATimeCompressionTest {
    private static final KvLayout LAYOUT = new KvLayout(4, 8, 2, 16, DType.F32, 4);
    private static final int TOKENS = 300;

    static List<String> policies() {
        return Policies.NAMES;
    }

    @ParameterizedTest
    @MethodSource("policies")
    void sameSelectionAsTheWholeSequenceCompressor(String name) {
        CompressionPolicy policy = Policies.byName(name);
        Budget budget = policy.dynamicBudget() ? Budget.dynamic() : Budget.fraction(0.3);
        StructuredKv gen = new StructuredKv(LAYOUT, 9, StructuredKv.Shape.realistic());
        SyntheticPolicyInputs inputs = new SyntheticPolicyInputs(LAYOUT, gen, 0, 9);
        int w = Math.max(1, policy.windowQueries());
        try (KvStore store = KvStore.open(LAYOUT); Compressor compressor = new Compressor()) {
            Sequence a = store.newSequence();
            Sequence b = store.newSequence();
            fill(a, gen);
            fill(b, gen);
            List<LayerInputs> layerInputs = new ArrayList<>();
            for (int l = 0; l < LAYOUT.layers(); l++) {
                layerInputs.add(inputs.layer(l, TOKENS, w));
            }
            policy.select(WholeContext.read(a, layerInputs), budget, compressor).applyTo(a);
            long kept = compressor.compress(b, policy, budget, layerInputs::get).keptRows();
            long keptWhole = 0;
            for (int l = 0; l < LAYOUT.layers(); l++) {
                for (int h = 0; h < LAYOUT.kvHeads(); h++) {
                    assertArrayEquals(a.positions(l, h), b.positions(l, h), name + " layer " + l + " head " + h);
                    int n = a.length(l, h) * LAYOUT.headDim();
                    float[] ka = new float[n];
                    float[] kb = new float[n];
                    a.readKeys(l, h, ka);
                    b.readKeys(l, h, kb);
                    assertArrayEquals(ka, kb);
                    keptWhole += a.length(l, h);
                }
            }
            assertEquals(keptWhole, kept);
            assertTrue(kept < (long) TOKENS * LAYOUT.layers() * LAYOUT.kvHeads(), name + " evicted nothing");
            a.close();
            b.close();
        }
    }

    private static void fill(Sequence s, StructuredKv gen) {
        int width = LAYOUT.kvHeads() * LAYOUT.headDim();
        long[] pos = new long[TOKENS];
        for (int i = 0; i < TOKENS; i++) {
            pos[i] = i;
        }
        float[] k = new float[TOKENS * width];
        float[] v = new float[TOKENS * width];
        for (int l = 0; l < LAYOUT.layers(); l++) {
            gen.keys(0, l, pos, k);
            gen.values(0, l, pos, v);
            s.appendChunk(l, k, v, pos);
        }
    }
}
