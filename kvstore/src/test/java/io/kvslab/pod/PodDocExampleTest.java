package io.kvslab.pod;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The decode example of docs/pod.md is this code: it compiles here, runs on a real store (v1 with the identity
 * grouping equals ordinary attention up to the merge's rounding), and the page holds it verbatim.
 */
class PodDocExampleTest {
    @Test
    void theDocumentedDecodeStepRunsAndIsOnThePage() throws IOException {
        int layers = 2;
        int qh = 4;
        int kvh = 2;
        int dim = 8;
        KvLayout layout = new KvLayout(layers, qh, kvh, dim, DType.F32, 4);
        Random rnd = new Random(3);
        LayerGrouping grouping = LayerGrouping.identity(new ModelFingerprint("doc", layers, qh, kvh, dim));
        float[][] q = new float[layers][qh * dim];
        float[][] k = new float[layers][kvh * dim];
        float[][] v = new float[layers][kvh * dim];
        float[][] out = new float[layers][qh * dim];
        try (KvStore store = KvStore.open(layout); Sequence sequence = store.newSequence();
             Attention dense = Attention.create(1)) {
            long position = 0;
            for (; position < 30; position++) {
                for (int l = 0; l < layers; l++) {
                    fill(rnd, k[l]);
                    fill(rnd, v[l]);
                    sequence.append(l, k[l], v[l], position);
                }
            }
            for (int l = 0; l < layers; l++) {
                fill(rnd, q[l]);
                fill(rnd, k[l]);
                fill(rnd, v[l]);
            }
            // doc:begin
            PodSharing sharing = new PodSharing(grouping, new PodConfig(4, 16, PodVariant.V1_SHARED_SCORES),
                    sequence.layout());
            try (PodDecoder pod = PodDecoder.create(sequence, sharing, 1)) {
                pod.startSharing(position);             // the context was prefilled densely
                for (int layer = 0; layer < sequence.layout().layers(); layer++) {
                    // this token's post-RoPE q [queryHeads*headDim], k and v [kvHeads*headDim] of this layer
                    pod.decode(layer, q[layer], k[layer], v[layer], position, out[layer]);
                }
            }
            // doc:end
            for (int l = 0; l < layers; l++) {
                float[] expected = new float[qh * dim];
                dense.decode(sequence, l, q[l], expected);
                assertArrayEquals(expected, out[l], 1e-5f);
            }
        }
        String source = Files.readString(Path.of("src/test/java/io/kvslab/pod/PodDocExampleTest.java"));
        String example = source.substring(source.indexOf("// doc:begin\n") + 13, source.indexOf("            // doc:end"))
                .replaceAll("(?m)^ {12}", "");
        String page = Files.readString(Path.of("../docs/pod.md"));
        assertTrue(page.contains("```java\n" + example + "```"), "docs/pod.md must hold the example verbatim:\n"
                + example);
    }

    private static void fill(Random rnd, float[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
    }
}
