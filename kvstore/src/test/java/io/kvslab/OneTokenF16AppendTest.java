package io.kvslab;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One-token appends of f16 tensors into an f16 store, the case whose rows are copied in one native call
 * ({@code kvs_append_rows}) when the library is loaded and by the Java copy otherwise (the java-fallback run executes
 * this class too). Every stored row must hold exactly the source row's bits (compared with the source itself and with
 * a store fed the same values through the float[] path), across block boundaries, a fork's shared partial tails, heads
 * far apart in the source (as the stress generator's views), heap and native sources, rows of whole cache lines
 * (head size 128: the non-temporal path) and not (head size 40: memcpy); and a rejected tensor (an infinity or NaN
 * in the last value of the last head) must leave the store unchanged, also when the append would take new blocks.
 */
class OneTokenF16AppendTest {
    private static final int LAYERS = 2;
    private static final int HEADS = 4;
    private static final int TPB = 4;
    /** Source head stride, in rows: heads lie apart with other data between them. */
    private static final int GAP = 3;

    /** Finite f16 bits of (salt, layer, head, position, d): all signs, subnormals, zeros and the largest values. */
    static short bits(int salt, int layer, int head, long position, int d) {
        long x = (salt * 0x9E3779B97F4A7C15L) ^ (layer * 0xC2B2AE3D27D4EB4FL) ^ (head * 0x165667B19E3779F9L)
                ^ (position * 0xD6E8FEB86659FD93L) ^ (d * 0xFF51AFD7ED558CCDL);
        x ^= x >>> 33;
        x *= 0xC4CEB9FE1A85EC53L;
        x ^= x >>> 29;
        short b = (short) x;
        if ((b & 0x7C00) == 0x7C00) {
            b = (short) (b & ~0x0400);   // exponent 30 instead of 31: finite, up to 65504 in magnitude
        }
        return b;
    }

    /** A [1, HEADS, dim] f16 tensor of (salt, layer, position) whose heads are GAP rows apart in {@code seg}. */
    private static KvTensor tensor(MemorySegment seg, int dim, int salt, int layer, long position, int sideSign) {
        for (long i = 0; i < seg.byteSize() / 2; i++) {
            seg.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) 0x7E00);   // NaN between the heads: must not be read
        }
        for (int h = 0; h < HEADS; h++) {
            for (int d = 0; d < dim; d++) {
                seg.setAtIndex(ValueLayout.JAVA_SHORT, (long) h * GAP * dim + d, bits(salt * sideSign, layer, h, position, d));
            }
        }
        return new KvTensor(seg, DType.F16, 1, HEADS, dim, (long) HEADS * GAP * dim, (long) GAP * dim, 1);
    }

    /** {@code t} over a read-only view of its segment (the stress generator hands its tables over so). */
    private static KvTensor readOnly(KvTensor t) {
        return new KvTensor(t.data().asReadOnly(), t.type(), t.tokens(), t.heads(), t.headDim(), t.tokenStride(),
                t.headStride(), t.dimStride());
    }

    /** The same rows as floats, [HEADS][dim], for the float[] path. */
    private static float[] floats(int dim, int salt, int layer, long position, int sideSign) {
        float[] a = new float[HEADS * dim];
        for (int h = 0; h < HEADS; h++) {
            for (int d = 0; d < dim; d++) {
                a[h * dim + d] = Float.float16ToFloat(bits(salt * sideSign, layer, h, position, d));
            }
        }
        return a;
    }

    /** Appends position p with {@code salt} to every layer of {@code a} (tensor) and {@code b} (floats). */
    private static void append(Sequence a, Sequence b, MemorySegment ks, MemorySegment vs, int dim, int salt, long p) {
        for (int l = 0; l < LAYERS; l++) {
            a.append(l, readOnly(tensor(ks, dim, salt, l, p, 1)), readOnly(tensor(vs, dim, salt, l, p, -1)), p);
            b.append(l, floats(dim, salt, l, p, 1), floats(dim, salt, l, p, -1), p);
        }
    }

    /** Every row of {@code s} bit for bit: row r is position r, written with {@code saltOf[r]}. */
    private static void assertRows(Sequence s, int dim, int[] saltOf, int n) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                assertEquals(n, s.length(l, h));
                long[] expectedPositions = new long[n];
                int[] ek = new int[n * dim];
                int[] ev = new int[n * dim];
                for (int r = 0; r < n; r++) {
                    expectedPositions[r] = r;
                    for (int d = 0; d < dim; d++) {
                        ek[r * dim + d] = bits(saltOf[r], l, h, r, d) & 0xFFFF;
                        ev[r * dim + d] = bits(-saltOf[r], l, h, r, d) & 0xFFFF;
                    }
                }
                assertArrayEquals(expectedPositions, s.positions(l, h));
                float[] k = new float[n * dim];
                float[] v = new float[n * dim];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                assertArrayEquals(ek, f16Bits(k), "keys of layer " + l + ", head " + h);
                assertArrayEquals(ev, f16Bits(v), "values of layer " + l + ", head " + h);
            }
        }
    }

    /** f16 bits of floats that are f16 values (exact: every finite f16 is a float). */
    private static int[] f16Bits(float[] a) {
        int[] b = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = Float.floatToFloat16(a[i]) & 0xFFFF;
            assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(Float.float16ToFloat((short) b[i])));
        }
        return b;
    }

    private static MemorySegment source(Arena arena, boolean heap, int dim) {
        long shorts = (long) HEADS * GAP * dim;
        return heap ? MemorySegment.ofArray(new short[(int) shorts]) : arena.allocate(shorts * 2, 64);
    }

    @ParameterizedTest
    @ValueSource(ints = {128, 40})
    void storedRowsAreTheSourceBitsAcrossBlocksAndForks(int dim) {
        KvLayout layout = new KvLayout(LAYERS, HEADS, HEADS, dim, DType.F16, TPB);
        try (Arena arena = Arena.ofConfined(); KvStore sa = KvStore.open(layout); KvStore sb = KvStore.open(layout)) {
            for (boolean heap : new boolean[] {true, false}) {
                MemorySegment ks = source(arena, heap, dim);
                MemorySegment vs = source(arena, heap, dim);
                Sequence a = sa.newSequence();
                Sequence b = sb.newSequence();
                int n = 3 * TPB + 2;
                int[] salts = new int[n + 2 * TPB + 1];
                for (int p = 0; p < n; p++) {
                    salts[p] = 1;
                    append(a, b, ks, vs, dim, 1, p);
                }
                // A fork shares the partial tail blocks: the next append of each side copies them first.
                Sequence af = a.fork();
                Sequence bf = b.fork();
                int[] forkSalts = salts.clone();
                for (int p = n; p < n + 2 * TPB + 1; p++) {
                    salts[p] = 2;
                    forkSalts[p] = 3;
                    append(a, b, ks, vs, dim, 2, p);
                    append(af, bf, ks, vs, dim, 3, p);
                }
                int total = n + 2 * TPB + 1;
                assertRows(a, dim, salts, total);
                assertRows(b, dim, salts, total);
                assertRows(af, dim, forkSalts, total);
                assertRows(bf, dim, forkSalts, total);
                a.close();
                b.close();
                af.close();
                bf.close();
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0x7C00, 0xFC00, 0x7E00})
    void aTensorWithANonFiniteValueLeavesTheStoreUnchanged(int bad) {
        int dim = 128;
        KvLayout layout = new KvLayout(LAYERS, HEADS, HEADS, dim, DType.F16, TPB);
        try (KvStore store = KvStore.open(layout)) {
            MemorySegment ks = MemorySegment.ofArray(new short[HEADS * GAP * dim]);
            MemorySegment vs = MemorySegment.ofArray(new short[HEADS * GAP * dim]);
            Sequence s = store.newSequence();
            int[] salts = new int[2 * TPB + 1];
            java.util.Arrays.fill(salts, 5);
            for (int p = 0; p <= 2 * TPB; p++) {
                // positions TPB - 1 (mid-block) and 2 TPB (the first row of a new block) are tried with a bad value first
                if (p == TPB - 1 || p == 2 * TPB) {
                    StoreStats before = store.stats();
                    KvTensor k = tensor(ks, dim, 5, 1, p, 1);
                    KvTensor v = tensor(vs, dim, 5, 1, p, -1);
                    vs.setAtIndex(ValueLayout.JAVA_SHORT, (long) (HEADS - 1) * GAP * dim + dim - 1, (short) bad);
                    long pos = p;
                    KvArgumentException e = assertThrows(KvArgumentException.class, () -> s.append(1, k, v, pos));
                    assertTrue(e.getMessage().contains("v[token 0, head " + (HEADS - 1) + ", dim " + (dim - 1) + "]"),
                            e.getMessage());
                    StoreStats after = store.stats();
                    assertEquals(before.liveBlocks(), after.liveBlocks());
                    assertEquals(before.liveBytes(), after.liveBytes());
                    for (int l = 0; l < LAYERS; l++) {
                        for (int h = 0; h < HEADS; h++) {
                            assertEquals(p, s.length(l, h));
                        }
                    }
                    assertRows(s, dim, salts, p);
                }
                for (int l = 0; l < LAYERS; l++) {
                    s.append(l, tensor(ks, dim, 5, l, p, 1), tensor(vs, dim, 5, l, p, -1), p);
                }
            }
            assertRows(s, dim, salts, 2 * TPB + 1);
            s.close();
        }
    }
}
