package io.kvslab.bench.eval.pod;

import io.kvslab.bench.eval.LogitMetrics;
import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.ModelFingerprint;
import io.kvslab.pod.PodConfig;
import io.kvslab.pod.PodSharing;
import io.kvslab.pod.PodVariant;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PoD inside the real runner (stories260K): the store + kernel path against an independent plain-Java PoD cache,
 * for v1 and v2, and the degenerate settings that must equal the dense run exactly.
 */
class PodRunnerTest {
    private static final int TPB = 8;
    private static final int CONTEXT = 96;
    private static final int TOTAL = 128;
    /** Hand-made groups of different shapes per KV head. */
    private static final int[][] GROUPS = {{5}, {2, 3}, {1, 4}, {1, 1, 1, 2}};

    private static int[] tokens(LoadedModel m) {
        return Arrays.copyOf(EvalTextSet.load().stories().get(1).tokens(m.tokenizer().bos()), TOTAL);
    }

    private static KvLayout layout(ModelConfig c) {
        return new KvLayout(c.layers(), c.heads(), c.kvHeads(), c.headDim(), DType.F32, TPB);
    }

    /** Teacher-forced logits with a PoD store cache; sharing starts after the context. */
    private static float[][] storeRun(LlamaModel model, int[] tokens, PodSharing sharing, SequenceAttention attention) {
        try (KvStore store = KvStore.open(layout(model.config()))) {
            PodKvCache cache = new PodKvCache(store.newSequence(), attention, sharing);
            try (Session s = new Session(model, cache, MatMul.JAVA, Session.DEFAULT_CHUNK)) {
                float[][] logits = TeacherForcing.run(s, tokens, CONTEXT, x -> cache.startSharing(CONTEXT));
                assertTrue(cache.freedBlocks() > 0 || sharing.grouping().sharingLayerHeads() == 0
                        || sharing.config().recent() >= TOTAL);
                return logits;
            }
        }
    }

    /** The dense run on the same store layout and kernel. */
    private static float[][] denseRun(LlamaModel model, int[] tokens) {
        try (KvStore store = KvStore.open(layout(model.config()));
             Session s = new Session(model, new StoreKvCache(store.newSequence(), KernelAttention.create(1)),
                     MatMul.JAVA, Session.DEFAULT_CHUNK)) {
            return TeacherForcing.run(s, tokens, CONTEXT, null);
        }
    }

    private static float[][] referenceRun(LlamaModel model, int[] tokens, int[][] base, PodConfig cfg) {
        JavaPodReference ref = new JavaPodReference(model.config(), base, cfg.sinks(), cfg.recent(), TPB,
                cfg.variant() == PodVariant.V1_SHARED_SCORES);
        try (Session s = new Session(model, ref, MatMul.JAVA, Session.DEFAULT_CHUNK)) {
            return TeacherForcing.run(s, tokens, CONTEXT, x -> ref.startSharing());
        }
    }

    private static double maxAbs(float[][] a, float[][] b, int from) {
        double m = 0;
        for (int i = from; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
            }
        }
        return m;
    }

    @Test
    void storeAndKernelPathMatchesAnIndependentJavaPodForV1AndV2() {
        LoadedModel m = SharedModels.bin();
        LlamaModel model = m.model();
        int[] tokens = tokens(m);
        ModelFingerprint fp = PodCalibration.fingerprint(model);
        LayerGrouping g = LayerGrouping.ofGroupSizes(fp, Double.NaN, GROUPS);
        int[][] base = new int[4][];
        for (int h = 0; h < 4; h++) {
            base[h] = g.baseLayers(h);
        }
        float[][] dense = denseRun(model, tokens);
        for (PodVariant variant : PodVariant.values()) {
            PodConfig cfg = new PodConfig(4, 16, variant);
            PodSharing sharing = new PodSharing(g, cfg, layout(model.config()));
            float[][] reference = referenceRun(model, tokens, base, cfg);
            float[][] kernel = storeRun(model, tokens, sharing, KernelAttention.create(1));
            assertTrue(maxAbs(reference, kernel, 0) < 2e-3, variant + ": kernel vs Java PoD, max logit difference "
                    + maxAbs(reference, kernel, 0));
            double kl = 0;
            double shift = 0;
            for (int i = CONTEXT; i < TOTAL; i++) {
                kl = Math.max(kl, LogitMetrics.klDivergence(reference[i], kernel[i]));
                shift = Math.max(shift, LogitMetrics.klDivergence(dense[i], kernel[i]));
            }
            assertTrue(kl < 1e-5, variant + ": KL(reference || kernel) " + kl);
            assertTrue(shift > 1e-3, variant + ": sharing keys without post-training must change the model");
            if (variant == PodVariant.V2_SHARED_KEYS) {
                // v2 through the plain-Java attention over the store's (aliased) rows
                float[][] java = storeRun(model, tokens, sharing, new ReferenceAttention());
                assertTrue(maxAbs(reference, java, 0) < 2e-3, "v2 store + Java attention vs reference");
            }
        }
    }

    @Test
    void withoutSharingPodIsTheDenseRunBitForBit() {
        LoadedModel m = SharedModels.bin();
        LlamaModel model = m.model();
        int[] tokens = tokens(m);
        ModelFingerprint fp = PodCalibration.fingerprint(model);
        float[][] dense = denseRun(model, tokens);
        KvLayout layout = layout(model.config());
        // every layer its own group: nothing to share
        float[][] identity = storeRun(model, tokens, new PodSharing(LayerGrouping.identity(fp),
                new PodConfig(4, 16, PodVariant.V2_SHARED_KEYS), layout), KernelAttention.create(1));
        // a recent window longer than the text: no distant token
        float[][] wide = storeRun(model, tokens, new PodSharing(LayerGrouping.ofGroupSizes(fp, 0, GROUPS),
                new PodConfig(4, TOTAL, PodVariant.V1_SHARED_SCORES), layout), KernelAttention.create(1));
        for (int i = 0; i < TOTAL; i++) {
            assertArrayEquals(dense[i], identity[i], "identity grouping, step " + i);
            // v1 merges a full own part with an empty distant part: equal up to rounding of the merge
            assertArrayEquals(dense[i], wide[i], 1e-5f, "n_r beyond the text, step " + i);
        }
    }

    @Test
    void fingerprintIdentifiesTheWeightsNotTheFileFormat() {
        ModelFingerprint bin = PodCalibration.fingerprint(SharedModels.bin().model());
        ModelFingerprint gguf = PodCalibration.fingerprint(SharedModels.gguf().model());
        assertEquals(bin, gguf, "the .bin and the .gguf hold the same weights");
        assertTrue(bin.modelId().startsWith("weights-sha256:"));
        assertEquals(5, bin.layers());
        assertEquals(4, bin.kvHeads());
    }
}
