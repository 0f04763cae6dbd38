package io.kvslab.bench.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class AotTrainingTest {
    @Test
    void commandLinesAreSplitAtThen() {
        List<String[]> lines = AotTraining.split("generate", "--steps", "8", "--then", "stress", "long", "-q",
                "--then", "--then");
        assertEquals(2, lines.size());
        assertArrayEquals(new String[] {"generate", "--steps", "8"}, lines.get(0));
        assertArrayEquals(new String[] {"stress", "long", "-q"}, lines.get(1));
        assertEquals(0, AotTraining.split().size());
    }

    /** Every line runs, and the first failure's exit code is the result (2: a usage error). */
    @Test
    void theFirstNonZeroExitCodeIsReturned() {
        assertEquals(0, AotTraining.runAll("stress", "long", "-q", "--tokens", "300", "--budget", "64", "--interval",
                "32", "--layers", "1", "--model", "2:4:2:32", "--attention-every", "0"));
        assertEquals(2, AotTraining.runAll("stress", "long", "--no-such-option", "--then", "stress", "long", "-q",
                "--tokens", "300", "--budget", "64", "--interval", "32", "--layers", "1", "--model", "2:4:2:32",
                "--attention-every", "0"));
    }
}
