package io.kvslab;

import io.kvslab.internal.table.RawBlocks;
import io.kvslab.testing.StoredValues;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Q8_0 / Q4_0 stores: geometry in bytes per row, values as ggml stores them, refusals, prefix cache sharing. */
class QuantizedStoreTest {

    @Test
    void geometryIsBytesPerRow() {
        // stories260K: head dim 8 -> 10 and 6 bytes per row (0.625 and 0.375 of f16)
        KvLayout q8 = new KvLayout(5, 8, 4, 8, DType.Q8_0, 32);
        KvLayout q4 = new KvLayout(5, 8, 4, 8, DType.Q4_0, 32);
        assertEquals(10, q8.rowBytes());
        assertEquals(6, q4.rowBytes());
        assertEquals(320, q8.blockBytes());
        assertEquals(2L * 5 * 4 * 10, q8.bytesPerToken());
        // Llama-3-8B: head dim 128 -> 136 and 72 bytes per row (0.53 and 0.28 of f16's 256)
        assertEquals(136, new KvLayout(32, 32, 8, 128, DType.Q8_0, 32).rowBytes());
        assertEquals(72, new KvLayout(32, 32, 8, 128, DType.Q4_0, 32).rowBytes());
    }

    @Test
    void headDimsAGroupCannotTileAreRefused() {
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> new KvLayout(1, 1, 1, 48, DType.Q8_0, 4));
        assertTrue(e.getMessage().contains("multiple of 32"), e.getMessage());
        e = assertThrows(KvArgumentException.class, () -> new KvLayout(1, 1, 1, 7, DType.Q4_0, 4));
        assertTrue(e.getMessage().contains("even"), e.getMessage());
        new KvLayout(1, 1, 1, 7, DType.Q8_0, 4);    // one group of 7 values
        new KvLayout(1, 1, 1, 96, DType.Q4_0, 4);   // three groups of 32
        e = assertThrows(KvArgumentException.class, () -> DType.Q8_0.bytes());
        assertTrue(e.getMessage().contains("rowBytes"), e.getMessage());
        e = assertThrows(KvArgumentException.class,
                () -> KvTensor.of(MemorySegment.ofArray(new byte[64]), DType.Q8_0, 1, 1, 8));
        assertTrue(e.getMessage().contains("F32, F16 or BF16"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void storesWhatGgmlStoresFromEveryCallerType(DType dt) {
        int dim = 64;
        KvLayout layout = new KvLayout(1, 2, 2, dim, dt, 4);
        float[] k = new float[6 * 2 * dim];
        float[] v = new float[k.length];
        for (int i = 0; i < k.length; i++) {
            k[i] = (float) Math.sin(i * 0.37) * (1 + i % 7);
            v[i] = (float) Math.cos(i * 0.11) * 0.01f;
        }
        long[] positions = {0, 1, 2, 3, 4, 5};
        try (KvStore store = KvStore.open(layout); Arena arena = Arena.ofConfined();
             Sequence a = store.newSequence(); Sequence b = store.newSequence()) {
            a.appendChunk(0, k, v, positions);
            // the same values as an f16 tensor: the store widens, then quantises (values first rounded to f16)
            MemorySegment ks = arena.allocate(2L * k.length), vs = arena.allocate(2L * v.length);
            float[] k16 = new float[k.length], v16 = new float[v.length];
            for (int i = 0; i < k.length; i++) {
                ks.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(k[i]));
                vs.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(v[i]));
                k16[i] = Float.float16ToFloat(Float.floatToFloat16(k[i]));
                v16[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
            }
            b.appendChunk(0, KvTensor.of(ks, DType.F16, 6, 2, dim), KvTensor.of(vs, DType.F16, 6, 2, dim), positions);
            for (int h = 0; h < 2; h++) {
                float[] got = new float[6 * dim];
                a.readKeys(0, h, got);
                assertArrayEquals(StoredValues.of(dt, head(k, h, dim), dim), got, "keys from f32, head " + h);
                a.readValues(0, h, got);
                assertArrayEquals(StoredValues.of(dt, head(v, h, dim), dim), got, "values from f32, head " + h);
                b.readKeys(0, h, got);
                assertArrayEquals(StoredValues.of(dt, head(k16, h, dim), dim), got, "keys from f16, head " + h);
                b.readValues(0, h, got);
                assertArrayEquals(StoredValues.of(dt, head(v16, h, dim), dim), got, "values from f16, head " + h);
            }
            // exact bytes: 2 blocks per (K or V) table of 4 rows of rowBytes
            assertEquals(2L * 2 * 2 * 4 * layout.rowBytes(), a.referencedBytes());
        }
    }

    /** Head h's rows of a [token][head][dim] array. */
    private static float[] head(float[] x, int h, int dim) {
        int tokens = x.length / (2 * dim);
        float[] r = new float[tokens * dim];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(x, (t * 2 + h) * dim, r, t * dim, dim);
        }
        return r;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void valuesWhoseScaleOverflowsF16AreRefusedAndChangeNothing(DType dt) {
        KvLayout layout = new KvLayout(1, 1, 1, 8, dt, 4);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            float[] ok = new float[8];
            ok[3] = 1e5f;   // above f16's range, fine for a scale of 1e5/127 (q8_0) or 1e5/8 (q4_0)
            s.append(0, ok, ok, 0);
            float[] bad = new float[8];
            bad[2] = dt == DType.Q8_0 ? 65504f * 128 : 65504f * 9;
            KvArgumentException e = assertThrows(KvArgumentException.class, () -> s.append(0, bad, ok, 1));
            assertTrue(e.getMessage().contains(dt.toString()), e.getMessage());
            bad[2] = Float.NaN;
            assertThrows(KvArgumentException.class, () -> s.append(0, ok, bad, 1));
            assertEquals(1, s.length(0, 0));
            float[] back = new float[8];
            s.readKeys(0, 0, back);
            assertArrayEquals(StoredValues.of(dt, ok, 8), back);
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void prefixCacheSharesQuantisedBlocks(DType dt) {
        KvLayout layout = new KvLayout(2, 2, 2, 8, dt, 4);
        try (KvStore store = KvStore.open(layout); PrefixCache cache = PrefixCache.create(store)) {
            int[] prompt = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
            try (Sequence first = store.newSequence()) {
                fill(first, prompt.length);
                assertEquals(2, cache.insert(first, prompt, 0));
                long live = store.stats().liveBytes();
                PrefixMatch m = cache.lookup(Arrays.copyOf(prompt, 9), 0);
                try (Sequence s = m.sequence()) {
                    assertEquals(8, m.matchedTokens());
                    assertEquals(live, store.stats().liveBytes(), "a hit allocates nothing");
                    assertArrayEquals(Arrays.copyOf(RawBlocks.blockIds(first, 1, 1, true), 2),
                            RawBlocks.blockIds(s, 1, 1, true));
                    for (int l = 0; l < 2; l++) {
                        for (int h = 0; h < 2; h++) {
                            float[] want = new float[8 * 8], got = new float[8 * 8], all = new float[10 * 8];
                            first.readKeys(l, h, all);
                            System.arraycopy(all, 0, want, 0, want.length);
                            s.readKeys(l, h, got);
                            assertArrayEquals(want, got);
                        }
                    }
                }
            }
        }
    }

    private static void fill(Sequence s, int tokens) {
        for (int l = 0; l < 2; l++) {
            for (int p = 0; p < tokens; p++) {
                float[] k = new float[16], v = new float[16];
                for (int i = 0; i < 16; i++) {
                    k[i] = (float) Math.sin(p * 0.7 + l + i * 0.3);
                    v[i] = (float) Math.cos(p * 0.5 + l + i * 0.2);
                }
                s.append(l, k, v, p);
            }
        }
    }
}
