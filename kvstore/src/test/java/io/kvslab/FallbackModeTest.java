package io.kvslab;

import io.kvslab.internal.ffm.NativeLibrary;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which kernels this test JVM runs: the native library in the default surefire execution, the plain-Java path in
 * the {@code java-fallback} execution ({@code -Dkvslab.native.disable=true}), so that execution cannot pass while
 * silently using native code. Both give attention equal to a hand-computed softmax.
 */
class FallbackModeTest {
    @Test
    void theExpectedKernelsRunAndAgreeWithAHandComputedSoftmax() {
        boolean disabled = Boolean.getBoolean("kvslab.native.disable");
        assertEquals(!disabled, NativeLibrary.isAvailable(), NativeLibrary.unavailableReason());
        // one KV head, head dim 2, two rows: keys (0,0) and (2 ln 3 / sqrt 2 ...): scores 0 and ln 3 -> p = 1/4, 3/4
        KvLayout layout = new KvLayout(1, 1, 1, 2, DType.F32, 4);
        float k1 = (float) (Math.log(3) * Math.sqrt(2));
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence(); Attention att = Attention.create(1)) {
            s.append(0, new float[] {0, 0}, new float[] {4, 0}, 0);
            s.append(0, new float[] {k1, 0}, new float[] {0, 8}, 1);
            float[] out = new float[2];
            att.decode(s, 0, new float[] {1, 0}, out);
            assertEquals(1.0f, out[0], 1e-5);   // 1/4 * 4
            assertEquals(6.0f, out[1], 1e-5);   // 3/4 * 8
            assertTrue(store.stats().liveBytes() > 0);
        }
    }
}
