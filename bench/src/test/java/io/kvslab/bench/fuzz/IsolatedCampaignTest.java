package io.kvslab.bench.fuzz;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Campaigns in child JVMs count exactly what an in-process campaign counts, and survive a JVM that dies mid-case. */
class IsolatedCampaignTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    @Test
    void batchesInChildJvmsGiveTheInProcessCounts() {
        FuzzReport here = FuzzCampaign.run(FuzzTarget.GGUF, 300, 5, TIMEOUT, null);
        FuzzReport isolated = FuzzCampaign.runIsolated(FuzzTarget.GGUF, 300, 5, TIMEOUT, 120, null);
        assertEquals(here.typedRejections(), isolated.typedRejections());
        assertEquals(here.accepted(), isolated.accepted());
        assertEquals(0, isolated.crashes());
        assertTrue(isolated.clean(), isolated.summary());
    }

    @Test
    void aChildThatDiesMidCaseIsACrashAndTheCampaignGoesOn() {
        FuzzReport here = FuzzCampaign.run(FuzzTarget.LLAMA2C, 200, 9, TIMEOUT, null);
        System.setProperty(FuzzChild.HALT_AT_CASE, "77");
        FuzzReport isolated;
        try {
            isolated = FuzzCampaign.runIsolated(FuzzTarget.LLAMA2C, 200, 9, TIMEOUT, 100, null);
        } finally {
            System.clearProperty(FuzzChild.HALT_AT_CASE);
        }
        assertEquals(1, isolated.crashes());
        assertFalse(isolated.clean());
        assertEquals(77, isolated.findings().get(0).caseId());
        assertEquals("CRASH", isolated.findings().get(0).outcome());
        assertTrue(isolated.findings().get(0).error().contains("status 134"));
        // every other case ran and was counted: 199 outcomes plus the crash
        assertEquals(199, isolated.typedRejections() + isolated.accepted() + isolated.unexpectedExceptions()
                + isolated.oracleViolations() + isolated.hangs());
        assertTrue(isolated.typedRejections() >= here.typedRejections() - 1);
    }
}
