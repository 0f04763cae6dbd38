package io.kvslab.policy;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The example of docs/policies.md is this code: it compiles here, runs on a real store, and the page holds it
 * verbatim (between the doc markers below, indentation removed).
 */
class PolicyDocExampleTest {
    private static final int LAYERS = 2;
    private static final int QUERY_HEADS = 4;
    private static final int HEAD_DIM = 8;
    private static final int MODEL_DIM = 16;
    private final Random rnd = new Random(5);

    @Test
    void theDocumentedExampleRunsAndIsOnThePage() throws IOException {
        KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, 2, HEAD_DIM, DType.F16, 16);
        try (KvStore store = KvStore.open(layout); Sequence sequence = store.newSequence()) {
            int n = 200;
            long[] positions = new long[n];
            for (int i = 0; i < n; i++) {
                positions[i] = i;
            }
            for (int l = 0; l < LAYERS; l++) {
                sequence.appendChunk(l, gaussian(n * 2 * HEAD_DIM), gaussian(n * 2 * HEAD_DIM), positions);
            }
            // doc:begin
            CompressionPolicy policy = Policies.criticalAdaKv();
            IntFunction<LayerInputs> inputs = layer -> new LayerInputs(
                    windowQueries(layer),     // the last 32 prompt tokens' queries of this layer
                    windowPositions(layer),   // their positions
                    outputProjection(layer)); // this layer's W_o
            try (Compressor compressor = new Compressor()) {
                CompressionResult result = compressor.compress(sequence, policy, Budget.fraction(0.25), inputs);
                System.out.println(result.keptRows() + " of " + result.rowsBeforeTotal() + " rows kept");
            }
            // doc:end
            assertEquals((long) LAYERS * 2 * 50, sequence.length(0, 0) + sequence.length(0, 1)
                    + sequence.length(1, 0) + sequence.length(1, 1));
        }
        String source = Files.readString(Path.of("src/test/java/io/kvslab/policy/PolicyDocExampleTest.java"));
        String example = source.substring(source.indexOf("// doc:begin\n") + 13, source.indexOf("            // doc:end"))
                .replaceAll("(?m)^ {12}", "");
        String page = Files.readString(Path.of("../docs/policies.md"));
        assertTrue(page.contains("```java\n" + example + "```"), "docs/policies.md must hold the example verbatim:\n"
                + example);
    }

    private float[] windowQueries(int layer) {
        return gaussian(32 * QUERY_HEADS * HEAD_DIM);
    }

    private long[] windowPositions(int layer) {
        long[] positions = new long[32];
        for (int i = 0; i < 32; i++) {
            positions[i] = 200 - 32 + i;
        }
        return positions;
    }

    private float[] outputProjection(int layer) {
        return gaussian(MODEL_DIM * QUERY_HEADS * HEAD_DIM);
    }

    private float[] gaussian(int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
