package io.kvslab.bench.serve;

import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pressure scenario (docs/serving.md) at a size a test can afford: with the KV limit at a quarter of what the
 * offered requests need together, every request completes, live KV bytes reach at least 90% of the limit and never
 * pass it, the policy compressed and recomputed requests, and the compressed requests' agreement with their
 * unconstrained runs is computed (reported, not held to a threshold here: docs/serving.md has the figures).
 */
class PressureScenarioTest {
    @Test
    void everyRequestCompletesUnderAQuarterOfTheMemory() throws Exception {
        // -Dkvslab.pressure.spec=... tries another policy (the figures in docs/serving.md come from such runs)
        PressureScenario.Setup setup = new PressureScenario.Setup(Integer.getInteger("kvslab.pressure.requests", 16),
                Integer.getInteger("kvslab.pressure.maxTokens", 120), 0.25, 256 << 10,
                System.getProperty("kvslab.pressure.spec", "compress:streamingllm:96,recompute"), 32);
        PressureScenario.Result r = PressureScenario.run(SharedModels.bin(), setup);
        System.out.println(r.report());
        assertEquals(setup.requests(), r.completed(), "every request completes");
        assertTrue(r.peakReservedBytes() <= r.limitBytes(), "reserved bytes never pass the limit");
        assertTrue(r.peakLiveBytes() <= r.limitBytes(), "live bytes never pass the limit");
        assertTrue(r.peakLiveBytes() >= 0.9 * r.limitBytes(),
                "the limit is used: peak " + r.peakLiveBytes() + " of " + r.limitBytes());
        assertTrue(r.compressions() > 0, "some requests were compressed");
        assertTrue(r.recomputes() > 0, "some requests were recomputed");
        double[] agreement = r.compressedAgreement();
        assertTrue(agreement.length > 0);
        for (double a : agreement) {
            assertTrue(a >= 0 && a <= 1);
        }
        // a request untouched by the policy generates exactly what it generates unconstrained
        for (PressureScenario.Outcome o : r.outcomes()) {
            if (o.compressions() == 0 && o.recomputes() == 0 && o.swaps() == 0) {
                assertEquals(1.0, o.agreement(), "an untouched request must be deterministic");
            }
        }
        assertFalse(Double.isNaN(PressureScenario.Result.median(agreement)));
    }

    @Test
    void swappedRequestsComeBackBitwise() throws Exception {
        PressureScenario.Setup setup = new PressureScenario.Setup(12, 100, 0.25, 256 << 10, "swap,recompute", 32);
        PressureScenario.Result r = PressureScenario.run(SharedModels.bin(), setup);
        System.out.println(r.report());
        assertEquals(setup.requests(), r.completed(), "every request completes");
        assertTrue(r.peakLiveBytes() <= r.limitBytes() && r.peakReservedBytes() <= r.limitBytes());
        assertTrue(r.swaps() > 0, "some requests were swapped out");
        // a swap-in restores the blocks bitwise, so a request only swapped generates its unconstrained tokens
        for (PressureScenario.Outcome o : r.outcomes()) {
            if (o.compressions() == 0 && o.recomputes() == 0) {
                assertEquals(1.0, o.agreement(), "a swapped (or untouched) request must be deterministic");
            }
        }
    }
}
