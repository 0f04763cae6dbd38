package io.kvslab.bench.cli;

import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.model.SharedModels;
import io.kvslab.pod.LayerGrouping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** {@code kvslab pod calibrate} writes a grouping file tied to the model's weights; bad options are usage errors. */
class PodCommandTest {
    @Test
    void calibrateWritesAGroupingFileForTheModel(@TempDir Path dir) {
        Path out = dir.resolve("g.pod-groups");
        int rc = Main.run(new String[] {"pod", "calibrate", "--model", SharedModels.binFile().toString(),
                "--tokenizer", SharedModels.tokenizerFile().toString(), "--texts", "1", "--queries", "8",
                "--delta", "0.4", "--out", out.toString()});
        assertEquals(0, rc);
        LayerGrouping g = LayerGrouping.load(out, PodCalibration.fingerprint(SharedModels.bin().model()));
        assertEquals(0.4, g.delta());
        assertEquals(5, g.layers());
    }

    @Test
    void badOptionsAreUsageErrors(@TempDir Path dir) {
        Path out = dir.resolve("never");
        assertEquals(2, Main.run(new String[] {"pod", "calibrate", "--delta", "1.5", "--out", out.toString()}));
        assertEquals(2, Main.run(new String[] {"pod", "group", "--out", out.toString()}));
        assertEquals(2, Main.run(new String[] {"eval", "fidelity", "--pod", "--pod-recent", "0"}));
        assertEquals(2, Main.run(new String[] {"eval", "fidelity", "--pod", "--pod-deltas", "x"}));
        assertFalse(Files.exists(out));
    }
}
