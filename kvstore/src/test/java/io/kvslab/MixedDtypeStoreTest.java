package io.kvslab;

import io.kvslab.snapshot.SnapshotInfo;
import io.kvslab.snapshot.Snapshots;
import io.kvslab.testing.StoredValues;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.SwappedSequence;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stores whose K and V rows have different types (llama.cpp's {@code --cache-type-k q8_0 --cache-type-v q4_0}):
 * geometry per side, values as each side's type stores them, blocks of two sizes, attention against a
 * double-precision reference over the dequantised rows, and every operation that moves rows.
 */
class MixedDtypeStoreTest {
    static Stream<Arguments> pairs() {
        return Stream.of(Arguments.of(DType.Q8_0, DType.Q4_0), Arguments.of(DType.F16, DType.Q8_0),
                Arguments.of(DType.F32, DType.BF16), Arguments.of(DType.Q4_0, DType.F32));
    }

    @Test
    void geometryIsPerSideAndHandComputed() {
        // stories260K: head dim 8. q8_0 = 2 + 8 = 10 bytes, q4_0 = 2 + 4 = 6, f16 = 16, f32 = 32.
        KvLayout q8q4 = new KvLayout(5, 8, 4, 8, DType.Q8_0, DType.Q4_0, 32);
        assertEquals(10, q8q4.keyRowBytes());
        assertEquals(6, q8q4.valueRowBytes());
        assertEquals(320, q8q4.keyBlockBytes());
        assertEquals(192, q8q4.valueBlockBytes());
        assertEquals(5L * 4 * (10 + 6), q8q4.bytesPerToken());
        KvLayout f16q8 = new KvLayout(5, 8, 4, 8, DType.F16, DType.Q8_0, 32);
        assertEquals(16, f16q8.keyRowBytes());
        assertEquals(10, f16q8.valueRowBytes());
        KvLayout f32bf16 = new KvLayout(5, 8, 4, 8, DType.F32, DType.BF16, 32);
        assertEquals(32, f32bf16.keyRowBytes());
        assertEquals(16, f32bf16.valueRowBytes());
        assertEquals("q8_0/q4_0", q8q4.dtypeName());
        // single-type accessors exist only for single-type layouts
        KvArgumentException e = assertThrows(KvArgumentException.class, q8q4::dtype);
        assertTrue(e.getMessage().contains("Q8_0") && e.getMessage().contains("Q4_0"), e.getMessage());
        assertThrows(KvArgumentException.class, q8q4::rowBytes);
        assertThrows(KvArgumentException.class, q8q4::blockBytes);
        KvLayout uniform = new KvLayout(5, 8, 4, 8, DType.Q8_0, 32);
        assertEquals(uniform, new KvLayout(5, 8, 4, 8, DType.Q8_0, DType.Q8_0, 32));
        assertEquals(DType.Q8_0, uniform.dtype());
        assertEquals("q8_0", uniform.dtypeName());
    }

    @Test
    void docExample() {
        int layers = 2, queryHeads = 4, kvHeads = 2, headDim = 8;
        // [doc:mixed-dtypes]
        KvLayout layout = new KvLayout(layers, queryHeads, kvHeads, headDim, DType.Q8_0, DType.Q4_0, 32);
        try (KvStore store = KvStore.open(layout); Sequence seq = store.newSequence()) {
            float[] k = new float[kvHeads * headDim], v = new float[kvHeads * headDim];
            seq.append(0, k, v, 0);                          // K quantised as q8_0, V as q4_0
            long bytes = layout.keyRowBytes() + layout.valueRowBytes();   // 10 + 6 at head dim 8
            assert seq.referencedBytes() == kvHeads * 32 * bytes;       // one K and one V block per KV head
        }
        // [/doc:mixed-dtypes]
        assertEquals(16, layout.keyRowBytes() + layout.valueRowBytes());
    }

    @Test
    void aSideThatCannotStoreTheHeadDimIsRefusedNamingSideAndAllowedTypes() {
        KvArgumentException e = assertThrows(KvArgumentException.class,
                () -> new KvLayout(1, 1, 1, 7, DType.F16, DType.Q4_0, 4));
        assertTrue(e.getMessage().startsWith("V dtype Q4_0"), e.getMessage());
        assertTrue(e.getMessage().contains("F32, F16, BF16, Q8_0"), e.getMessage());
        e = assertThrows(KvArgumentException.class, () -> new KvLayout(1, 1, 1, 48, DType.Q8_0, DType.F16, 4));
        assertTrue(e.getMessage().startsWith("K dtype Q8_0"), e.getMessage());
        assertTrue(e.getMessage().contains("allowed for this headDim: F32, F16, BF16"), e.getMessage());
        e = assertThrows(KvArgumentException.class, () -> new KvLayout(1, 1, 1, 8, null, DType.F16, 4));
        assertTrue(e.getMessage().contains("F32, F16, BF16, Q8_0, Q4_0"), e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("pairs")
    void eachSideStoresItsOwnTypeAndBytesAreExact(DType kt, DType vt) {
        int dim = 8;
        KvLayout layout = new KvLayout(2, 4, 2, dim, kt, vt, 4);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            float[][] k = new float[2][], v = new float[2][];
            fill(s, 10, new Random(1), k, v);
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < 2; h++) {
                    float[] got = new float[10 * dim];
                    s.readKeys(l, h, got);
                    assertArrayEquals(StoredValues.of(kt, head(k[l], h, 2, dim), dim), got, "K " + l + "/" + h);
                    s.readValues(l, h, got);
                    assertArrayEquals(StoredValues.of(vt, head(v[l], h, 2, dim), dim), got, "V " + l + "/" + h);
                }
            }
            // 10 rows of 4 per block: 3 K and 3 V blocks per (layer, KV head), each of its side's size
            long want = 2L * 2 * 3 * (4 * kt.rowBytes(dim) + 4 * vt.rowBytes(dim));
            assertEquals(want, s.referencedBytes());
            assertEquals(want, store.stats().liveBytes());
            assertEquals(want, s.metrics().referencedBytes());
        }
        assertEquals(0, nativeBytesAfterClose(layout));
    }

    private static long nativeBytesAfterClose(KvLayout layout) {
        KvStore store = KvStore.open(layout);
        Sequence s = store.newSequence();
        fill(s, 5, new Random(2), new float[2][], new float[2][]);
        s.close();
        store.close();
        return store.stats().reservedBytes();
    }

    @ParameterizedTest
    @MethodSource("pairs")
    void decodeAndPrefillMatchAReferenceOverTheDequantisedRows(DType kt, DType vt) {
        int dim = 32;
        int kvHeads = 2;
        int group = 2;
        KvLayout layout = new KvLayout(1, kvHeads * group, kvHeads, dim, kt, vt, 16);
        try (KvStore store = KvStore.open(layout); Attention attn = Attention.create(2);
             Sequence s = store.newSequence(); Sequence t = store.newSequence()) {
            Random rnd = new Random(3);
            int n = 300;
            appendRandom(s, n, kvHeads, dim, rnd);
            appendRandom(t, 77, kvHeads, dim, rnd);
            float[] q = randoms(kvHeads * group * dim, rnd);
            float[] out = new float[q.length];
            attn.decode(s, 0, q, out);
            float[] ref = reference(s, q, kvHeads, group, dim, 1, n);
            assertClose(ref, out, 1e-5, "decode " + kt + "/" + vt);

            // batched decode: bitwise the single-sequence results
            float[] q2 = randoms(q.length, rnd);
            float[] single2 = new float[q.length];
            attn.decode(t, 0, q2, single2);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment qs = arena.allocate(2L * q.length * Float.BYTES);
                MemorySegment os = arena.allocate(2L * q.length * Float.BYTES);
                MemorySegment.copy(q, 0, qs, ValueLayout.JAVA_FLOAT, 0, q.length);
                MemorySegment.copy(q2, 0, qs, ValueLayout.JAVA_FLOAT, (long) q.length * Float.BYTES, q.length);
                attn.decodeBatch(0, List.of(s, t), qs, os);
                float[] b1 = os.asSlice(0, (long) q.length * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
                float[] b2 = os.asSlice((long) q.length * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
                assertArrayEquals(out, b1, "batched decode of sequence 1 is bitwise its single decode");
                assertArrayEquals(single2, b2, "batched decode of sequence 2 is bitwise its single decode");
            }

            // prefill of the last 5 rows: causal, against the same reference
            int nq = 5;
            float[] pq = randoms(nq * q.length, rnd);
            float[] pout = new float[pq.length];
            attn.prefill(s, 0, pq, nq, pout);
            float[] pref = reference(s, pq, kvHeads, group, dim, nq, n);
            assertClose(pref, pout, 2e-4, "prefill " + kt + "/" + vt);
        }
    }

    @ParameterizedTest
    @MethodSource("pairs")
    void forkKeepCompactionAndSnapshotsMoveEachSideAsItsOwnBytes(DType kt, DType vt, @TempDir Path dir) {
        int dim = 8;
        KvLayout layout = new KvLayout(2, 4, 2, dim, kt, vt, 4);
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(4096));
             Sequence s = store.newSequence()) {
            fill(s, 10, new Random(4), new float[2][], new float[2][]);
            float[][][] keys = read(s, true, dim), values = read(s, false, dim);
            try (Sequence f = s.fork()) {
                // the fork writes into the shared partial tail: copy-on-write of a K and a V block of their sizes
                fill(f, 1, 10, new Random(5));
                assertArrayEquals(keys[1][1], java.util.Arrays.copyOf(read(f, true, dim)[1][1], 10 * dim));
                assertArrayEquals(values[1][1], read(s, false, dim)[1][1]);
                f.keep(1, 1, new int[] {0, 2, 5, 9, 10});
                float[][][] fk = read(f, true, dim), fv = read(f, false, dim);
                assertArrayEquals(rows(keys[1][1], dim, 0, 2, 5, 9), java.util.Arrays.copyOf(fk[1][1], 4 * dim));
                assertArrayEquals(rows(values[1][1], dim, 0, 2, 5, 9), java.util.Arrays.copyOf(fv[1][1], 4 * dim));
                try (Sequence g = store.newSequence()) {
                    fill(g, 30, new Random(6), new float[2][], new float[2][]);   // spread over several slabs
                }
                store.compact();
                assertArrayEquals(fk[1][1], read(f, true, dim)[1][1], "K rows survive compaction");
                assertArrayEquals(fv[1][1], read(f, false, dim)[1][1], "V rows survive compaction");
                assertArrayEquals(keys[0][0], read(s, true, dim)[0][0]);
                assertArrayEquals(values[0][0], read(s, false, dim)[0][0]);
            }

            Path file = dir.resolve("mixed.kvs");
            SnapshotInfo info = Snapshots.save(s, file);
            assertEquals(3, info.formatVersion(), "K and V types differ: version 3");
            assertEquals(layout, Snapshots.inspect(file).layout());
            try (KvStore other = KvStore.open(layout); Sequence r = Snapshots.restore(other, file)) {
                assertArrayEquals(flat(keys), flat(read(r, true, dim)));
                assertArrayEquals(flat(values), flat(read(r, false, dim)));
                assertEquals(s.referencedBytes(), r.referencedBytes());
            }
            // a store with the other type on one side refuses the file
            KvLayout swapped = new KvLayout(2, 4, 2, dim, vt, kt, 4);
            try (KvStore other = KvStore.open(swapped)) {
                assertThrows(KvSlabException.class, () -> Snapshots.restore(other, file));
            }

            // swap out to a disk tier and back in: every block returns as its side's bytes
            try (DiskTier tier = DiskTier.open(dir.resolve("tier"), Long.MAX_VALUE)) {
                Sequence t = s.fork();
                SwappedSequence swapped1 = t.swapOut(tier);
                assertEquals(s.referencedBytes(), swapped1.blockBytes());
                try (Sequence back = store.swapIn(swapped1)) {
                    assertArrayEquals(flat(keys), flat(read(back, true, dim)));
                    assertArrayEquals(flat(values), flat(read(back, false, dim)));
                }
            }
        }
    }

    @Test
    void ropeShiftRequantisesKeysWithTheKeyTypeAndLeavesValuesBitwise() {
        int dim = 8;
        KvLayout layout = new KvLayout(1, 2, 2, dim, DType.Q8_0, DType.Q4_0, 4);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            fill(s, 9, new Random(7), new float[1][], new float[1][]);
            float[][][] k0 = read(s, true, dim), v0 = read(s, false, dim);
            io.kvslab.internal.table.RopeRotation rope = io.kvslab.internal.table.RopeRotation.DEFAULT;
            s.shiftPositions(4, 9, 3, rope.theta(), rope.rotaryDims());
            for (int h = 0; h < 2; h++) {
                float[] want = k0[0][h].clone();
                float[] rotated = java.util.Arrays.copyOfRange(want, 4 * dim, 9 * dim);
                for (int r = 0; r < 5; r++) {
                    rope.rotate(rotated, r * dim, dim, 3);
                }
                System.arraycopy(StoredValues.of(DType.Q8_0, rotated, dim), 0, want, 4 * dim, 5 * dim);
                assertArrayEquals(want, read(s, true, dim)[0][h], "K: dequantised, rotated, requantised as Q8_0");
                assertArrayEquals(v0[0][h], read(s, false, dim)[0][h], "V untouched");
            }
            assertEquals(7, s.positions(0, 0)[4]);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void fill(Sequence s, int tokens, Random rnd, float[][] k, float[][] v) {
        int layers = s.layout().layers();
        int width = s.layout().kvHeads() * s.layout().headDim();
        for (int l = 0; l < layers; l++) {
            k[l] = randoms(tokens * width, rnd);
            v[l] = randoms(tokens * width, rnd);
            long[] pos = new long[tokens];
            for (int i = 0; i < tokens; i++) {
                pos[i] = i;
            }
            s.appendChunk(l, k[l], v[l], pos);
        }
    }

    private static void fill(Sequence s, int tokens, long from, Random rnd) {
        int width = s.layout().kvHeads() * s.layout().headDim();
        for (int l = 0; l < s.layout().layers(); l++) {
            for (int i = 0; i < tokens; i++) {
                s.append(l, randoms(width, rnd), randoms(width, rnd), from + i);
            }
        }
    }

    private static void appendRandom(Sequence s, int n, int kvHeads, int dim, Random rnd) {
        long[] pos = new long[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i;
        }
        s.appendChunk(0, randoms(n * kvHeads * dim, rnd), randoms(n * kvHeads * dim, rnd), pos);
    }

    private static float[] randoms(int n, Random rnd) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }

    private static float[][][] read(Sequence s, boolean keys, int dim) {
        int layers = s.layout().layers(), heads = s.layout().kvHeads();
        float[][][] out = new float[layers][heads][];
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) {
                out[l][h] = new float[s.length(l, h) * dim];
                if (keys) {
                    s.readKeys(l, h, out[l][h]);
                } else {
                    s.readValues(l, h, out[l][h]);
                }
            }
        }
        return out;
    }

    private static float[] flat(float[][][] x) {
        return Stream.of(x).flatMap(Stream::of).reduce(new float[0], (a, b) -> {
            float[] c = java.util.Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, c, a.length, b.length);
            return c;
        });
    }

    private static float[] rows(float[] x, int dim, int... rows) {
        float[] out = new float[rows.length * dim];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(x, rows[i] * dim, out, i * dim, dim);
        }
        return out;
    }

    /** Head h's rows of a [token][head][dim] array. */
    private static float[] head(float[] x, int h, int heads, int dim) {
        int tokens = x.length / (heads * dim);
        float[] r = new float[tokens * dim];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(x, (t * heads + h) * dim, r, t * dim, dim);
        }
        return r;
    }

    /**
     * Double-precision causal attention over the store's dequantised rows: nq queries (the last nq rows), each
     * [kvHeads * group * dim]; query i sees rows 0 .. n - nq + i. Scale 1 / sqrt(dim).
     */
    private static float[] reference(Sequence s, float[] q, int kvHeads, int group, int dim, int nq, int n) {
        float[] out = new float[q.length];
        for (int h = 0; h < kvHeads; h++) {
            float[] k = new float[n * dim], v = new float[n * dim];
            s.readKeys(0, h, k);
            s.readValues(0, h, v);
            for (int i = 0; i < nq; i++) {
                int visible = n - nq + i + 1;
                for (int g = 0; g < group; g++) {
                    int qo = ((i * kvHeads + h) * group + g) * dim;
                    double[] o = SequenceAttentionTest.reference(q, qo, k, v, visible, dim);
                    for (int c = 0; c < dim; c++) {
                        out[qo + c] = (float) o[c];
                    }
                }
            }
        }
        return out;
    }

    private static void assertClose(float[] want, float[] got, double rel, String what) {
        double norm = 0;
        for (float w : want) {
            norm = Math.max(norm, Math.abs(w));
        }
        for (int i = 0; i < want.length; i++) {
            assertTrue(Math.abs(want[i] - got[i]) <= rel * Math.max(norm, 1e-30),
                    what + ": element " + i + " is " + got[i] + ", reference " + want[i]);
        }
    }
}
