package io.kvslab.policy;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The layer-at-a-time path really holds one layer: in a child JVM whose heap (48 MiB) is far below the fp32 copy of
 * the whole sequence (16 layers x 4 KV heads x 4,096 rows x 64 x 4 B x 2 = 128 MiB) but above one layer's (8 MiB),
 * {@link Compressor#compress} of SnapKV succeeds, while reading every layer up front (the old
 * {@code SequenceContext.read}) runs out of heap.
 */
class LayerAtATimeHeapTest {
    static final int LAYERS = 16;
    static final int QUERY_HEADS = 8;
    static final int KV_HEADS = 4;
    static final int HEAD_DIM = 64;
    static final int TOKENS = 4096;

    /** Child program: fills a store, compresses layer at a time, then tries the whole-sequence read. */
    public static final class Child {
        public static void main(String[] args) {
            KvLayout layout = new KvLayout(LAYERS, QUERY_HEADS, KV_HEADS, HEAD_DIM, DType.F16, 32);
            Random rnd = new Random(1);
            int chunk = 512;
            float[] k = new float[chunk * KV_HEADS * HEAD_DIM];
            float[] v = new float[k.length];
            long[] pos = new long[chunk];
            try (KvStore store = KvStore.open(layout); Compressor compressor = new Compressor()) {
                Sequence s = store.newSequence();
                for (int l = 0; l < LAYERS; l++) {
                    for (int t0 = 0; t0 < TOKENS; t0 += chunk) {
                        for (int i = 0; i < k.length; i++) {
                            k[i] = (float) rnd.nextGaussian();
                            v[i] = (float) rnd.nextGaussian();
                        }
                        for (int i = 0; i < chunk; i++) {
                            pos[i] = t0 + i;
                        }
                        s.appendChunk(l, k, v, pos);
                    }
                }
                float[] q = new float[32 * QUERY_HEADS * HEAD_DIM];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                long[] qPos = new long[32];
                for (int i = 0; i < 32; i++) {
                    qPos[i] = TOKENS - 32 + i;
                }
                LayerInputs window = LayerInputs.window(q, qPos);
                Sequence fork = s.fork();
                CompressionResult r = compressor.compress(fork, Policies.snapKv(), Budget.fraction(0.5),
                        layer -> window);
                System.out.println("layer-at-a-time kept " + r.keptRows() + " of " + r.rowsBeforeTotal());
                fork.close();
                try {
                    List<LayerContext> all = new ArrayList<>();
                    for (int l = 0; l < LAYERS; l++) {
                        all.add(LayerContext.read(s, l, window));
                    }
                    System.out.println("whole-sequence read fit: " + all.size());
                } catch (OutOfMemoryError e) {
                    System.out.println("whole-sequence read ran out of heap");
                }
                s.close();
            }
        }
    }

    @Test
    void compressesASequenceWhoseWholeCopyDoesNotFitTheHeap() throws Exception {
        ForkedJvm.Result r = ForkedJvm.run(Child.class, 300, List.of("-Xmx48m", "-XX:MaxDirectMemorySize=1g"));
        assertTrue(r.clean(), r.describe());
        long rows = (long) LAYERS * KV_HEADS * TOKENS;
        assertTrue(r.stdout().contains("layer-at-a-time kept " + rows / 2 + " of " + rows), r.describe());
        assertTrue(r.stdout().contains("whole-sequence read ran out of heap"), r.describe());
    }
}
