package io.kvslab.bench.fuzz;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CI fuzz campaign of issue 11: at least 20,000 structure-aware cases across the three targets, none of which may
 * end in an unexpected exception, an oracle violation or a hang. Runs in surefire's forked JVM, so a crash (SIGSEGV)
 * fails the build instead of passing unnoticed.
 */
class FuzzCampaignTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    private static void assertClean(FuzzReport r, long cases) {
        System.out.println(r.summary());
        assertEquals(cases, r.cases());
        assertEquals(cases, r.typedRejections() + r.accepted() + r.unexpectedExceptions() + r.oracleViolations()
                + r.hangs(), "every case has exactly one outcome");
        assertTrue(r.clean(), () -> r.summary() + "\n" + r.toJson());
        // the mutations reach both sides: files the reader refuses and mutated files it still accepts
        assertTrue(r.typedRejections() > cases / 4, r.summary());
        assertTrue(r.accepted() > 0, r.summary());
    }

    @Test
    void snapshotCampaign() {
        assertClean(FuzzCampaign.run(FuzzTarget.SNAPSHOT, 8_000, 20261130L, TIMEOUT, null), 8_000);
    }

    @Test
    void ggufCampaign() {
        assertClean(FuzzCampaign.run(FuzzTarget.GGUF, 7_000, 20261130L, TIMEOUT, null), 7_000);
    }

    @Test
    void llama2cCampaign() {
        assertClean(FuzzCampaign.run(FuzzTarget.LLAMA2C, 5_000, 20261130L, TIMEOUT, null), 5_000);
    }
}
