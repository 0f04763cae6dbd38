package io.kvslab;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An append remembers where its tables' tail blocks sit and looks them up again only for another block or after a
 * compaction moved blocks; and it looks a tail's reference count up once when no tail was shared. Appends across
 * compactions that move tail blocks, and across forks that share partial tails, must still store every row where
 * it reads back: each table's rows are compared value for value with what was appended (f32: no rounding).
 */
class AppendPlacementTest {
    private static final int LAYERS = 2;
    private static final int HEADS = 4;
    private static final int DIM = 8;
    private static final int TPB = 4;

    /** The appended value of (salt, layer, head, position, dim): distinct, exact in f32. */
    private static float value(int salt, int layer, int head, long position, int d) {
        return salt * 100_000f + layer * 10_000f + head * 1_000f + position * 10f + d + 0.5f;
    }

    private static void append(Sequence s, int salt, long position, boolean tensor) {
        for (int l = 0; l < LAYERS; l++) {
            float[] k = new float[HEADS * DIM];
            float[] v = new float[HEADS * DIM];
            for (int h = 0; h < HEADS; h++) {
                for (int d = 0; d < DIM; d++) {
                    k[h * DIM + d] = value(salt, l, h, position, d);
                    v[h * DIM + d] = -value(salt, l, h, position, d);
                }
            }
            if (tensor) {
                s.append(l, KvTensor.of(MemorySegment.ofArray(k), DType.F32, 1, HEADS, DIM),
                        KvTensor.of(MemorySegment.ofArray(v), DType.F32, 1, HEADS, DIM), position);
            } else {
                s.append(l, k, v, position);
            }
        }
    }

    /** Every row of {@code s}: rows {@code [0, n)} hold positions {@code 0 .. n-1}, salt from {@code saltOf}. */
    private static void assertRows(Sequence s, long n, java.util.function.LongToIntFunction saltOf) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                assertEquals(n, s.length(l, h));
                float[] k = new float[(int) n * DIM];
                float[] v = new float[(int) n * DIM];
                s.readKeys(l, h, k);
                s.readValues(l, h, v);
                float[] ek = new float[k.length];
                float[] ev = new float[v.length];
                for (int p = 0; p < n; p++) {
                    for (int d = 0; d < DIM; d++) {
                        ek[p * DIM + d] = value(saltOf.applyAsInt(p), l, h, p, d);
                        ev[p * DIM + d] = -ek[p * DIM + d];
                    }
                }
                assertArrayEquals(ek, k, "keys of layer " + l + " head " + h);
                assertArrayEquals(ev, v, "values of layer " + l + " head " + h);
            }
        }
    }

    @Test
    void appendsAfterACompactionMovedTheTailBlocksLandWhereTheyReadBack() {
        for (boolean tensor : new boolean[] {false, true}) {
            KvLayout layout = new KvLayout(LAYERS, HEADS, HEADS, DIM, DType.F32, TPB);
            long blockBytes = (long) TPB * DIM * Float.BYTES;
            // 6 blocks per slab, 16 blocks per allocating append (2 layers x 4 heads x K, V): A's and B's blocks
            // share slabs, so closing B leaves slabs part empty
            try (KvStore store = KvStore.open(layout, new StoreConfig(1L << 30, 6 * blockBytes))) {
                Sequence a = store.newSequence();
                Sequence b = store.newSequence();
                long n = 0;
                for (; n < 6 * TPB + 1; n++) {   // ends one row into a block: the tails are partial
                    append(a, 1, n, tensor);
                    append(b, 2, n, tensor);
                }
                b.close();
                long moved = 0;
                for (int round = 0; round < 3; round++) {
                    moved += store.compact().blocksMoved();
                    for (int i = 0; i < TPB + 1; i++, n++) {   // into the moved tails, and on into new blocks
                        append(a, 1, n, tensor);
                    }
                    Sequence c = store.newSequence();   // more blocks to free for the next round's compaction
                    for (int i = 0; i < 3 * TPB; i++) {
                        append(c, 3, i, tensor);
                        append(a, 1, n++, tensor);
                    }
                    c.close();
                    assertRows(a, n, p -> 1);
                }
                assertTrue(moved > 0, "the compactions moved no block, so no cached placement went stale");
                a.close();
            }
        }
    }

    @Test
    void forkedPartialTailsAreCopiedBeforeEitherSideWrites() {
        KvLayout layout = new KvLayout(LAYERS, HEADS, HEADS, DIM, DType.F32, TPB);
        try (KvStore store = KvStore.open(layout)) {
            Sequence a = store.newSequence();
            long n = 0;
            for (; n < 2 * TPB + 2; n++) {
                append(a, 1, n, false);
            }
            long forkedAt = n;
            Sequence c = a.fork();   // shares a's partial tails
            for (int i = 0; i < 2 * TPB; i++, n++) {
                append(a, 1, n, false);
                append(c, 5, n, false);
            }
            assertRows(a, n, p -> 1);
            assertRows(c, n, p -> p < forkedAt ? 1 : 5);
            c.close();
            for (int i = 0; i < TPB + 1; i++, n++) {   // exclusive again: written in place
                append(a, 1, n, false);
            }
            assertRows(a, n, p -> 1);
            a.close();
        }
    }
}
