package io.kvslab.examples;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.KvTensor;
import io.kvslab.LayerView;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The "bring your own tensors" example of docs/embedding.md, run as a test. */
class TensorExampleTest {
    @Test
    void engineTensorsGoInAndOutWithoutStagingCopies() {
        int layers = 2, queryHeads = 8, kvHeads = 2, headDim = 64, tokens = 100;
        long liveAfter;
        // [doc:tensors]
        KvLayout layout = KvLayout.of(layers, queryHeads, kvHeads, headDim, DType.F16);
        try (Arena arena = Arena.ofConfined();                             // the engine's own activations
             KvStore store = KvStore.open(layout);
             Attention attention = Attention.create(1);
             Sequence seq = store.newSequence()) {
            // post-RoPE K and V of a prefill chunk, as a forward pass leaves them: [tokens, kvHeads, headDim], f32
            MemorySegment k = arena.allocate(ValueLayout.JAVA_FLOAT, (long) tokens * kvHeads * headDim);
            MemorySegment v = arena.allocate(ValueLayout.JAVA_FLOAT, (long) tokens * kvHeads * headDim);
            long[] positions = new long[tokens];
            for (int t = 0; t < tokens; t++) {
                positions[t] = t;
            }
            for (int layer = 0; layer < layers; layer++) {
                // viewed in place: checked once, each row converted to f16 straight into block memory
                seq.appendChunk(layer, KvTensor.of(k, DType.F32, tokens, kvHeads, headDim),
                        KvTensor.of(v, DType.F32, tokens, kvHeads, headDim), positions);
            }
            // decode: native query and output buffers are read and written by the kernel in place
            MemorySegment q = arena.allocate(ValueLayout.JAVA_FLOAT, (long) queryHeads * headDim);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, (long) queryHeads * headDim);
            attention.decode(seq, 0, q, out);
            // an engine with its own attention reads the blocks through a scoped view
            try (LayerView view = seq.readLayer(0)) {
                MemorySegment firstKeys = view.keyBlock(0, 0);                 // read-only, dies with the view
                System.out.println(view.length(0) + " rows, block of " + firstKeys.byteSize() + " bytes");
            }
            liveAfter = store.stats().liveBytes();
        }
        // [/doc:tensors]
        assertEquals(2L * layers * kvHeads * 4 * 32 * headDim * 2, liveAfter);   // 100 rows -> 4 blocks of 32, K and V
    }
}
