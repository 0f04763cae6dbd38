package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Attention.QueryPrecision} through the public API: the integer-query path is opt-in, changes the output of
 * quantised-key stores only slightly, is the same in single and batched decode, and leaves other stores bitwise
 * as they were. (Its exact arithmetic is tested against an independent reference in
 * {@code NativeAttentionQuantisedQueryTest}.)
 */
class QuantisedQueryAttentionTest {

    @Test
    void defaultIsExactAndNullIsRejected() {
        try (Attention a = Attention.create(1)) {
            assertEquals(Attention.QueryPrecision.EXACT, a.queryPrecision());
        }
        try (Attention a = Attention.create(2, Attention.QueryPrecision.Q8_0)) {
            assertEquals(Attention.QueryPrecision.Q8_0, a.queryPrecision());
            assertEquals(2, a.threads());
        }
        try (Attention a = Attention.create(1, Attention.QueryPrecision.INT8)) {
            assertEquals(Attention.QueryPrecision.INT8, a.queryPrecision());
        }
        assertThrows(KvArgumentException.class, () -> Attention.create(1, null));
        assertThrows(KvArgumentException.class, () -> Attention.create(0, Attention.QueryPrecision.Q8_0));
    }

    @Test
    void quantisedKeysGetCloseButDifferentOutputsSingleAndBatched() {
        for (DType k : new DType[] {DType.Q8_0, DType.Q4_0}) {
          for (Attention.QueryPrecision precision : new Attention.QueryPrecision[] {Attention.QueryPrecision.Q8_0,
                  Attention.QueryPrecision.INT8}) {
            KvLayout layout = new KvLayout(1, 8, 2, 128, k, DType.Q8_0, 32);
            Random rnd = new Random(k.code());
            try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence(); Sequence t = store.newSequence();
                 Attention exact = Attention.create(1);
                 Attention integer = Attention.create(1, precision);
                 Arena arena = Arena.ofConfined()) {
                SequenceAttentionTest.fill(s, rnd, 700);
                SequenceAttentionTest.fill(t, rnd, 90);
                int width = layout.queryHeads() * layout.headDim();
                float[] q = SequenceAttentionTest.random(rnd, width, 1f);
                float[] outExact = new float[width];
                float[] outInt = new float[width];
                exact.decode(s, 0, q, outExact);
                integer.decode(s, 0, q, outInt);
                double maxDiff = 0;
                double maxOut = 0;
                for (int i = 0; i < width; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(outExact[i] - outInt[i]));
                    maxOut = Math.max(maxOut, Math.abs(outExact[i]));
                }
                assertTrue(maxDiff > 0, "the integer path was taken for " + k + ", " + precision);
                // the query's rounding (1/254 of a group's amax per value) moves scores by well under 1%
                assertTrue(maxDiff <= 0.02 * maxOut, "max diff " + maxDiff + " vs max |out| " + maxOut + " for " + k);

                MemorySegment qb = arena.allocate(JAVA_FLOAT, 2L * width);
                MemorySegment.copy(q, 0, qb, JAVA_FLOAT, 0, width);
                MemorySegment.copy(q, 0, qb, JAVA_FLOAT, (long) width * Float.BYTES, width);
                MemorySegment ob = arena.allocate(JAVA_FLOAT, 2L * width);
                integer.decodeBatch(0, List.of(s, t), qb, ob);
                assertArrayEquals(outInt, ob.asSlice(0, (long) width * Float.BYTES).toArray(JAVA_FLOAT));
                float[] outT = new float[width];
                integer.decode(t, 0, q, outT);
                assertArrayEquals(outT, ob.asSlice((long) width * Float.BYTES).toArray(JAVA_FLOAT));
            }
          }
        }
    }

    @Test
    void smallHeadsTakeTheIntegerPathTooAsOneGroupPerRow() {
        // head dim 8 (stories260K): the store's one group of 8 values per row; the query is quantised the same way
        for (Attention.QueryPrecision precision : new Attention.QueryPrecision[] {Attention.QueryPrecision.Q8_0,
                Attention.QueryPrecision.INT8}) {
            KvLayout layout = new KvLayout(1, 8, 2, 8, DType.Q8_0, 16);
            Random rnd = new Random(8);
            try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
                 Attention exact = Attention.create(1);
                 Attention low = Attention.create(1, precision)) {
                SequenceAttentionTest.fill(s, rnd, 200);
                float[] q = SequenceAttentionTest.random(rnd, layout.queryHeads() * layout.headDim(), 1f);
                float[] a = new float[q.length];
                float[] b = new float[q.length];
                exact.decode(s, 0, q, a);
                low.decode(s, 0, q, b);
                double maxDiff = 0;
                double maxOut = 0;
                for (int i = 0; i < q.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
                    maxOut = Math.max(maxOut, Math.abs(a[i]));
                }
                assertTrue(maxDiff > 0, "the integer path was taken, " + precision);
                assertTrue(maxDiff <= 0.03 * maxOut, "max diff " + maxDiff + " vs max |out| " + maxOut);
            }
        }
    }

    @Test
    void otherTypesAreUnchanged() {
        // f16 K and V: neither integer path applies, whatever the precision
        KvLayout[] layouts = {new KvLayout(1, 4, 2, 128, DType.F16, 16), new KvLayout(1, 4, 2, 8, DType.F16, 16)};
        for (KvLayout layout : layouts) {
            Random rnd = new Random(layout.headDim());
            try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence();
                 Attention exact = Attention.create(1);
                 Attention integer = Attention.create(1, Attention.QueryPrecision.INT8)) {
                SequenceAttentionTest.fill(s, rnd, 200);
                float[] q = SequenceAttentionTest.random(rnd, layout.queryHeads() * layout.headDim(), 1f);
                float[] a = new float[q.length];
                float[] b = new float[q.length];
                exact.decode(s, 0, q, a);
                integer.decode(s, 0, q, b);
                assertArrayEquals(a, b, layout.toString());
                assertFalse(a.length == 0);
            }
        }
    }
}
