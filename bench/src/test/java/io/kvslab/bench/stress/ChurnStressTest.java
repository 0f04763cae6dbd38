package io.kvslab.bench.stress;

import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.ReferenceAttention;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChurnStressTest {
    private static final KvLayout LAYOUT = new KvLayout(3, 4, 2, 16, DType.F16, 4);

    private static ChurnStress.Config config(double seconds) {
        return new ChurnStress.Config(LAYOUT, 3, seconds, 0, 16 * 1024, 6, 96, 0.25, 5);
    }

    @Test
    void churnAcrossThreadsHoldsEveryInvariantAndLeaksNothing() throws Exception {
        ChurnStress.Result r = new ChurnStress(config(2.0), null).run();
        assertTrue(r.ok(), r.summary());
        for (ChurnStress.Op op : new ChurnStress.Op[] {ChurnStress.Op.CREATE, ChurnStress.Op.APPEND,
                ChurnStress.Op.FORK, ChurnStress.Op.EVICT, ChurnStress.Op.COMPRESS, ChurnStress.Op.VERIFY, ChurnStress.Op.COMPACT,
                ChurnStress.Op.CLOSE}) {
            assertTrue(r.ops().get(op) > 0, op + " never ran: " + r.summary());
        }
        assertEquals(0, r.ops().get(ChurnStress.Op.ATTEND), "no backend given: no attention checks");
        assertTrue(r.checkpoints() >= 2, r.summary());
        assertTrue(r.limitHits() > 0, "the derived limit should be hit sometimes: " + r.summary());
        assertTrue(r.peakReservedBytes() <= r.limitBytes());
        assertEquals(0, r.finalReservedBytes());
    }

    @Test
    void theNativeKernelAgreesWithTheReferenceUnderChurn() throws Exception {
        try (PerThreadKernelAttention kernel = new PerThreadKernelAttention(1)) {
            ChurnStress.Result r = new ChurnStress(config(1.5), kernel).run();
            assertTrue(r.ok(), r.summary());
            assertTrue(r.attentionChecks() > 0, r.summary());
            assertEquals(r.attentionChecks(), r.ops().get(ChurnStress.Op.ATTEND));
            assertTrue(r.maxAttentionError() < LongContextStress.ATTENTION_TOLERANCE, r.summary());
        }
    }

    /** With an attention backend the sampled check runs, and a wrong backend is caught. */
    @Test
    void attentionSamplesAreComparedWithTheReference() throws Exception {
        SequenceAttention halved = new SequenceAttention() {
            @Override
            public String name() {
                return "halved";
            }

            @Override
            public void decode(Sequence s, int layer, float[] q, float[] out) {
                new ReferenceAttention().decode(s, layer, q, out);
                for (int i = 0; i < out.length; i++) {
                    out[i] *= 0.5f;
                }
            }

            @Override
            public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
                throw new UnsupportedOperationException("the stress runs decode only");
            }
        };
        ChurnStress.Result r = new ChurnStress(config(0.6), halved).run();
        assertTrue(r.attentionChecks() > 0, r.summary());
        assertFalse(r.ok());
        assertTrue(r.violations().stream().allMatch(v -> v.contains("attention")), r.violations().toString());
        assertEquals(0, r.finalReservedBytes());
    }
}
