package io.kvslab.bench.model;

import io.kvslab.bench.eval.LogitMetrics;
import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.DType;
import io.kvslab.KvStore;
import io.kvslab.StoreConfig;
import io.kvslab.CompactionResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The runner on the KV store: agreement with the reference, and bitwise stability under compaction. */
class StoreRunnerTest {
    /** A golden greedy story as a token sequence: BOS, then llama2.c's ids. */
    private static int[] story() {
        SharedModels.Golden g = SharedModels.goldens().stream().filter(x -> x.file().startsWith("greedy-once")).findFirst()
                .orElseThrow();
        int[] t = new int[g.ids().length + 1];
        t[0] = 1;
        System.arraycopy(g.ids(), 0, t, 1, g.ids().length);
        return t;
    }

    private static SequenceAttention attention(KvBackend b) {
        return b == KvBackend.STORE ? KernelAttention.create(1) : new ReferenceAttention();
    }

    @ParameterizedTest
    @EnumSource(value = KvBackend.class, names = {"STORE", "STORE_JAVA"})
    void storeRunMatchesTheReference(KvBackend backend) {
        LlamaModel m = SharedModels.bin().model();
        int[] tokens = Arrays.copyOf(story(), 200);
        float[][] ref;
        try (Session s = Session.reference(m)) {
            ref = TeacherForcing.run(s, tokens, 40, null);
        }
        float[][] got;
        try (Session s = new Session(m, backend.open(m.config(), DType.F32), MatMul.JAVA, 16)) {
            got = TeacherForcing.run(s, tokens, 40, null);
        }
        for (int i = 0; i < tokens.length; i++) {
            assertEquals(LogitMetrics.argmax(ref[i]), LogitMetrics.argmax(got[i]), "top-1 at step " + i);
            assertTrue(LogitMetrics.klDivergence(ref[i], got[i]) < 1e-8, "KL at step " + i);
            for (int j = 0; j < ref[i].length; j++) {
                assertEquals(ref[i][j], got[i][j], 1e-4f * Math.max(1f, Math.abs(ref[i][j])), "logit " + j + " at step " + i);
            }
        }
    }

    /**
     * Two sessions share a store with small slabs, so their blocks interleave; closing one leaves sparse slabs, which
     * compaction empties by moving the survivor's blocks. The survivor, after a retain of every row (which evicts
     * nothing) and the compaction, must continue with logits bit-identical to an undisturbed run that feeds the same
     * chunks (the kernel's prefill rounding depends on the chunking, so that is kept equal).
     */
    @ParameterizedTest
    @EnumSource(value = KvBackend.class, names = {"STORE", "STORE_JAVA"})
    void compactionWithoutEvictionKeepsLogitsBitwiseIdentical(KvBackend backend) {
        LlamaModel m = SharedModels.bin().model();
        int[] tokens = Arrays.copyOf(story(), 160);
        float[][] undisturbed = runWithFiller(m, backend, tokens, false);
        float[][] compacted = runWithFiller(m, backend, tokens, true);
        for (int i = 0; i < tokens.length; i++) {
            for (int j = 0; j < compacted[i].length; j++) {
                assertEquals(Float.floatToRawIntBits(undisturbed[i][j]), Float.floatToRawIntBits(compacted[i][j]),
                        "logit " + j + " at step " + i);
            }
        }
    }

    private static float[][] runWithFiller(LlamaModel m, KvBackend backend, int[] tokens, boolean disturb) {
        int prefill = 70;
        var layout = StoreKvCache.layout(m.config(), DType.F32);
        // slabs of 12 blocks while a sequence takes 8 per layer and 32-token block: the sessions share slabs
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(12 * layout.blockBytes()))) {
            Session filler = new Session(m, new StoreKvCache(store.newSequence(), attention(backend)), MatMul.JAVA, 16);
            Session main = new Session(m, new StoreKvCache(store.newSequence(), attention(backend)), MatMul.JAVA, 16);
            float[][] got = new float[tokens.length][];
            for (int off = 0; off < prefill; off += 10) {
                int[] chunk = Arrays.copyOfRange(tokens, off, Math.min(prefill, off + 10));
                float[][] part = main.prefillAll(chunk);
                System.arraycopy(part, 0, got, off, part.length);
                if (disturb) {
                    filler.prefill(chunk);
                }
            }
            filler.close();
            if (disturb) {
                StoreKvCache cache = (StoreKvCache) main.cache();
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        int[] all = new int[cache.sequence().length(l, h)];
                        Arrays.setAll(all, i -> i);
                        cache.sequence().keep(l, h, all);
                    }
                }
                long slabsBefore = store.stats().slabs();
                CompactionResult r = store.compact();
                assertTrue(r.blocksMoved() > 0 && r.slabsReleased() > 0, "compaction moved blocks and released slabs: " + r);
                assertTrue(store.stats().slabs() < slabsBefore);
            }
            for (int i = prefill; i < tokens.length; i++) {
                got[i] = main.step(tokens[i]);
                if (disturb && i == prefill + 20) {
                    store.compact(); // again mid-decode, with a partly filled tail block
                }
            }
            main.close();
            return got;
        }
    }

    @Test
    void halfPrecisionRowsStayClose() {
        LlamaModel m = SharedModels.bin().model();
        int[] tokens = Arrays.copyOf(story(), 120);
        float[][] ref;
        try (Session s = Session.reference(m)) {
            ref = TeacherForcing.run(s, tokens, 30, null);
        }
        for (DType d : new DType[]{DType.F16, DType.BF16}) {
            try (Session s = new Session(m, KvBackend.STORE_JAVA.open(m.config(), d), MatMul.JAVA, 16)) {
                float[][] got = TeacherForcing.run(s, tokens, 30, null);
                double maxKl = 0;
                for (int i = 0; i < tokens.length; i++) {
                    maxKl = Math.max(maxKl, LogitMetrics.klDivergence(ref[i], got[i]));
                }
                assertTrue(maxKl > 0 && maxKl < (d == DType.F16 ? 1e-4 : 1e-2), d + " max KL " + maxKl);
            }
        }
    }
}
