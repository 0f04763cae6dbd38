package io.kvslab.examples;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.policy.Budget;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;
import io.kvslab.snapshot.Snapshots;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The examples of README.md and docs/embedding.md, run as tests: those documents include the regions between the
 * {@code // [doc:NAME]} markers verbatim, and {@link DocExamplesTest} fails if they differ.
 */
class EmbeddingExampleTest {
    /** What the embedding example reports, for the assertions below. */
    record Outcome(float[] decoded, float[] decodedAfterRestore, int rowsAfterEviction, int rowsAfterPolicy,
                   long liveBytesAfterClose) {}

    // [doc:embedding]
    static Outcome embeddingExample(Path snapshotFile) {
        int layers = 2, queryHeads = 4, kvHeads = 2, headDim = 64, prompt = 96;
        KvLayout layout = KvLayout.of(layers, queryHeads, kvHeads, headDim, DType.F16);
        Random rnd = new Random(42);
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withLimitBytes(64L << 20));
             Attention attention = Attention.create(2)) {           // one per thread; kernel threads <= 2
            float[] q = randomFloats(rnd, queryHeads * headDim);  // the new token's queries, RoPE applied
            float[] out = new float[queryHeads * headDim];
            float[] restoredOut = new float[queryHeads * headDim];
            int rowsAfterEviction, rowsAfterPolicy;
            try (Sequence seq = store.newSequence()) {
                // prefill: K and V of the prompt, [token][kvHead][headDim], keys already RoPE-rotated
                long[] positions = LongStream.range(0, prompt).toArray();
                for (int layer = 0; layer < layers; layer++) {
                    seq.appendChunk(layer, randomFloats(rnd, prompt * kvHeads * headDim),
                            randomFloats(rnd, prompt * kvHeads * headDim), positions);
                }
                // one decode step: append the token's K/V to every layer, then attend over the layer
                for (int layer = 0; layer < layers; layer++) {
                    seq.append(layer, randomFloats(rnd, kvHeads * headDim), randomFloats(rnd, kvHeads * headDim),
                            prompt);
                    attention.decode(seq, layer, q, out);
                }
                // fork: the branch shares every block; its first append copies the shared partial tail block
                try (Sequence branch = seq.fork()) {
                    branch.append(0, randomFloats(rnd, kvHeads * headDim), randomFloats(rnd, kvHeads * headDim),
                            prompt + 1);
                }
                // evict rows by hand: keep rows 0..3 (attention sinks) and the last 32 of layer 0, KV head 0
                int n = seq.length(0, 0);
                int[] keep = new int[4 + 32];
                for (int i = 0; i < 4; i++) keep[i] = i;
                for (int i = 0; i < 32; i++) keep[4 + i] = n - 32 + i;
                seq.keep(0, 0, keep);                               // the other rows' blocks are freed
                rowsAfterEviction = seq.length(0, 0);
                // compress with a policy: Knorm keeps half of every head's rows (low key norm = important)
                try (Compressor compressor = new Compressor()) {
                    compressor.compress(seq, Policies.knorm(), Budget.fraction(0.5));   // layer at a time
                }
                rowsAfterPolicy = seq.length(1, 0);
                attention.decode(seq, 1, q, out);
                // snapshot to a file and restore it as a new sequence: bitwise the same rows
                Snapshots.save(seq, snapshotFile);
                try (Sequence restored = Snapshots.restore(store, snapshotFile)) {
                    attention.decode(restored, 1, q, restoredOut);
                }
            }
            long live = store.stats().liveBytes();                  // every sequence closed: 0
            return new Outcome(out, restoredOut, rowsAfterEviction, rowsAfterPolicy, live);
        }                                                           // close() would throw if any block leaked
    }

    static float[] randomFloats(Random rnd, int count) {
        float[] a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float) rnd.nextGaussian();
        return a;
    }
    // [/doc:embedding]

    @Test
    void embeddingExampleRunsAndLeavesZeroBytes(@TempDir Path dir) {
        Outcome o = embeddingExample(dir.resolve("example.kvs"));
        assertEquals(36, o.rowsAfterEviction());
        assertEquals(48, o.rowsAfterPolicy(), "half of 97 rows, floored");
        assertTrue(Arrays.stream(toDoubles(o.decoded())).allMatch(Double::isFinite));
        assertTrue(Arrays.stream(toDoubles(o.decoded())).anyMatch(x -> x != 0));
        assertArrayEquals(o.decoded(), o.decodedAfterRestore(), "a restored sequence decodes bit for bit the same");
        assertEquals(0, o.liveBytesAfterClose());
    }

    @Test
    void readmeSnippetRuns() {
        int layer = 0;
        float[] k = new float[4 * 8 * 128];
        float[] v = new float[4 * 8 * 128];
        long[] positions = {0, 1, 2, 3};
        float[] kToken = new float[8 * 128];
        float[] vToken = new float[8 * 128];
        long pos = 4;
        int kvHead = 0;
        int[] keptRows = {0, 4};
        java.io.ByteArrayOutputStream printed = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        System.setOut(new java.io.PrintStream(printed, true));
        try {
        // [doc:readme]
        KvLayout layout = KvLayout.of(32, 32, 8, 128, DType.F16);          // layers, q heads, KV heads, head dim, dtype
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withLimitBytes(8L << 30));
             Attention attention = Attention.create(2);                      // one per thread
             Sequence seq = store.newSequence()) {
            seq.appendChunk(layer, k, v, positions);                        // prefill chunk, keys already RoPE-rotated
            seq.append(layer, kToken, vToken, pos);                         // one decode step
            float[] q = new float[32 * 128], out = new float[32 * 128];
            attention.decode(seq, layer, q, out);                           // attention over the layer's rows
            seq.keep(layer, kvHead, keptRows);                              // evict: the other rows' blocks are freed
            try (Sequence branch = seq.fork()) {                            // prefix sharing, copy-on-write tail
                branch.append(layer, kToken, vToken, pos + 1);
            }
            System.out.println(store.stats().liveBytes());
        }                                                                   // closing in this order leaks nothing
        // [/doc:readme]
        } finally {
            System.setOut(stdout);
        }
        // the fork was closed and the rest still held 2 rows of KV head 0 and 5 of the others: blocks were live
        assertTrue(Long.parseLong(printed.toString().trim()) > 0, printed.toString());
    }

    private static double[] toDoubles(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }
}
