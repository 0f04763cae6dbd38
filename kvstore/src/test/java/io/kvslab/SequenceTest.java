package io.kvslab;

import io.kvslab.KvArgumentException;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SequenceTest {
    private static final int LAYERS = 2;
    private static final int KV_HEADS = 3;
    private static final int DIM = 8;
    private static final int TPB = 4;
    private static final KvLayout F32 = new KvLayout(LAYERS, 6, KV_HEADS, DIM, DType.F32, TPB);

    /** Deterministic value of element d of token position p, KV head h, layer l (k or v). */
    static float value(int l, int h, long p, int d, boolean key) {
        return (float) Math.sin(1.0 + l * 7.1 + h * 3.3 + p * 0.37 + d * 1.9 + (key ? 0 : 11.0)) * 4f;
    }

    static float[] token(int l, long p, boolean key) {
        float[] x = new float[KV_HEADS * DIM];
        for (int h = 0; h < KV_HEADS; h++) {
            for (int d = 0; d < DIM; d++) {
                x[h * DIM + d] = value(l, h, p, d, key);
            }
        }
        return x;
    }

    static void fill(Sequence s, long from, long to) {
        for (int l = 0; l < LAYERS; l++) {
            for (long p = from; p < to; p++) {
                s.append(l, token(l, p, true), token(l, p, false), p);
            }
        }
    }

    /** The rows a (layer, head) must hold: the given positions' values, rounded like the dtype. */
    static float[] expectedRows(DType dt, int l, int h, long[] positions, boolean key) {
        float[] x = new float[positions.length * DIM];
        for (int i = 0; i < positions.length; i++) {
            for (int d = 0; d < DIM; d++) {
                x[i * DIM + d] = value(l, h, positions[i], d, key);
            }
        }
        return io.kvslab.testing.StoredValues.of(dt, x, DIM);
    }

    static void assertHolds(Sequence s, int l, int h, long[] positions) {
        assertArrayEquals(positions, s.positions(l, h));
        DType dt = s.layout().dtype();
        float[] k = new float[positions.length * DIM];
        float[] v = new float[positions.length * DIM];
        s.readKeys(l, h, k);
        s.readValues(l, h, v);
        assertArrayEquals(expectedRows(dt, l, h, positions, true), k, "keys of layer " + l + " head " + h);
        assertArrayEquals(expectedRows(dt, l, h, positions, false), v, "values of layer " + l + " head " + h);
    }

    static long[] range(long from, long to) {
        long[] p = new long[(int) (to - from)];
        for (int i = 0; i < p.length; i++) {
            p[i] = from + i;
        }
        return p;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void appendAndChunkRoundTripInEveryDtype(DType dt) {
        KvLayout layout = new KvLayout(LAYERS, 6, KV_HEADS, DIM, dt, TPB);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            fill(s, 0, 5);
            // a chunk of 9 tokens crossing two block boundaries
            for (int l = 0; l < LAYERS; l++) {
                float[] k = new float[9 * KV_HEADS * DIM];
                float[] v = new float[9 * KV_HEADS * DIM];
                for (int i = 0; i < 9; i++) {
                    System.arraycopy(token(l, 5 + i, true), 0, k, i * KV_HEADS * DIM, KV_HEADS * DIM);
                    System.arraycopy(token(l, 5 + i, false), 0, v, i * KV_HEADS * DIM, KV_HEADS * DIM);
                }
                s.appendChunk(l, k, v, range(5, 14));
            }
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    assertEquals(14, s.length(l, h));
                    assertEquals(4, s.blockCount(l, h));
                    assertHolds(s, l, h, range(0, 14));
                }
            }
            long blocks = 2L * LAYERS * KV_HEADS * 4;
            assertEquals(blocks * layout.blockBytes(), s.referencedBytes());
            assertEquals(blocks * layout.blockBytes(), store.stats().liveBytes());
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)   // quantised dtypes too: forks, keep and compaction move rows as bytes
    void retainKeepsRowsBitwiseWithPositionsAndFreesBlocks(DType dt) {
        KvLayout layout = new KvLayout(LAYERS, 6, KV_HEADS, DIM, dt, TPB);
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            fill(s, 100, 130);   // 30 rows = 8 blocks per table
            int[] keep = {0, 3, 4, 5, 17, 29};
            s.keep(1, 2, keep);
            assertHolds(s, 1, 2, new long[] {100, 103, 104, 105, 117, 129});
            assertEquals(2, s.blockCount(1, 2));
            s.keep(0, 0, new int[0]);
            assertEquals(0, s.length(0, 0));
            // Ragged: other heads untouched.
            assertHolds(s, 1, 1, range(100, 130));
            long tables = 2L * (LAYERS * KV_HEADS - 2) * 8 + 2L * 2 + 0;
            assertEquals(tables * layout.blockBytes(), store.stats().liveBytes(), "live = retained blocks only");
            // Appending after eviction continues after the last position of the layer.
            s.append(1, token(1, 130, true), token(1, 130, false), 130);
            assertHolds(s, 1, 2, new long[] {100, 103, 104, 105, 117, 129, 130});
            assertThrows(KvArgumentException.class,
                    () -> s.append(1, token(1, 130, true), token(1, 130, false), 130), "position not increasing");
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)   // quantised dtypes too: forks, keep and compaction move rows as bytes
    void forkSharesBlocksAndCopiesOnWrite(DType dt) {
        KvLayout layout = new KvLayout(LAYERS, 6, KV_HEADS, DIM, dt, TPB);
        try (KvStore store = KvStore.open(layout)) {
            Sequence parent = store.newSequence();
            fill(parent, 0, 6);   // blocks: one full, one half (2 rows)
            long liveBefore = store.stats().liveBytes();
            Sequence child = parent.fork();
            assertEquals(liveBefore, store.stats().liveBytes(), "fork copies nothing");
            // Diverge: the child appends its own token 6, the parent a different one.
            for (int l = 0; l < LAYERS; l++) {
                child.append(l, token(l, 6, true), token(l, 6, false), 6);
                parent.append(l, token(l, 60, true), token(l, 60, false), 60);
            }
            // The first writer (the child) copies each shared partial tail; the parent then owns the original.
            long tailCopies = 2L * LAYERS * KV_HEADS;
            assertEquals(liveBefore + tailCopies * layout.blockBytes(), store.stats().liveBytes());
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV_HEADS; h++) {
                    assertHolds(child, l, h, range(0, 7));
                    assertHolds(parent, l, h, new long[] {0, 1, 2, 3, 4, 5, 60});
                }
            }
            // Evicting in the child rebuilds its tables; the parent keeps all its rows.
            child.keep(0, 1, new int[] {1, 6});
            assertHolds(child, 0, 1, new long[] {1, 6});
            assertHolds(parent, 0, 1, new long[] {0, 1, 2, 3, 4, 5, 60});
            parent.close();
            for (int h = 0; h < KV_HEADS; h++) {
                assertHolds(child, 1, h, range(0, 7));
            }
            child.close();
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void limitExceededIsTypedAndLeavesEverythingUnchanged() {
        long block = F32.blockBytes();
        // 4 tokens fill one block in each of the 12 tables (2 layers x 3 heads x K/V); room for 5 more blocks.
        StoreConfig cfg = new StoreConfig(17 * block, 8 * block);
        try (KvStore store = KvStore.open(F32, cfg); Sequence s = store.newSequence()) {
            fill(s, 0, 4);               // 12 blocks
            StoreStats before = store.stats();
            // Layer 0 needs 6 new blocks for token 4: only 5 fit.
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> s.append(0, token(0, 4, true), token(0, 4, false), 4));
            assertEquals(17 * block, e.limitBytes());
            assertEquals(6 * block, e.requestedBytes());
            assertEquals(before.liveBytes(), store.stats().liveBytes());
            for (int h = 0; h < KV_HEADS; h++) {
                assertHolds(s, 0, h, range(0, 4));
            }
            // Evict to make room, then the same append succeeds.
            for (int h = 0; h < KV_HEADS; h++) {
                s.keep(1, h, new int[0]);   // frees 2 blocks per head
            }
            s.append(0, token(0, 4, true), token(0, 4, false), 4);
            assertHolds(s, 0, 2, range(0, 5));
        }
    }

    @Test
    void closingAStoreWithLiveBlocksIsReportedAndFreesEverything() {
        KvStore store = KvStore.open(F32);
        Sequence s = store.newSequence();
        fill(s, 0, 3);
        LeakedBlocksException e = assertThrows(LeakedBlocksException.class, store::close);
        assertEquals(2L * LAYERS * KV_HEADS, e.liveBlocks());
        assertEquals(1, e.openSequences());
        assertEquals(0, store.stats().reservedBytes(), "native bytes back to zero");
        assertThrows(ClosedException.class, () -> s.length(0, 0));
        s.close();   // harmless after the store closed
        assertThrows(ClosedException.class, store::newSequence);
    }

    @Test
    void cleanCloseReturnsNativeBytesToZero() {
        KvStore store = KvStore.open(F32);
        try (Sequence s = store.newSequence()) {
            fill(s, 0, 50);
            assertTrue(store.stats().reservedBytes() > 0);
        }
        store.close();
        assertEquals(0, store.stats().reservedBytes());
        assertEquals(0, store.stats().slabs());
    }

    @Test
    void badInputIsRejectedWithoutSideEffects() {
        KvLayout f16 = new KvLayout(LAYERS, 6, KV_HEADS, DIM, DType.F16, TPB);
        try (KvStore store = KvStore.open(f16); Sequence s = store.newSequence()) {
            fill(s, 0, 3);
            long live = store.stats().liveBytes();
            float[] ok = token(0, 3, true);
            float[] nan = ok.clone();
            nan[5] = Float.NaN;
            float[] big = ok.clone();
            big[0] = 1e6f;
            assertThrows(KvArgumentException.class, () -> s.append(-1, ok, ok, 3));
            assertThrows(KvArgumentException.class, () -> s.append(LAYERS, ok, ok, 3));
            assertThrows(KvArgumentException.class, () -> s.append(0, new float[5], ok, 3));
            assertThrows(KvArgumentException.class, () -> s.append(0, ok, null, 3));
            assertThrows(KvArgumentException.class, () -> s.append(0, nan, ok, 3));
            KvArgumentException range = assertThrows(KvArgumentException.class, () -> s.append(0, big, ok, 3));
            assertTrue(range.getMessage().contains("65504"), range.getMessage());
            assertThrows(KvArgumentException.class, () -> s.append(0, ok, ok, 2), "position must increase");
            assertThrows(KvArgumentException.class, () -> s.appendChunk(0, ok, ok, new long[0]));
            assertThrows(KvArgumentException.class,
                    () -> s.appendChunk(0, new float[2 * ok.length], new float[2 * ok.length], new long[] {5, 4}));
            assertThrows(KvArgumentException.class, () -> s.keep(0, 0, new int[] {1, 1}));
            assertThrows(KvArgumentException.class, () -> s.keep(0, 0, new int[] {2, 1}));
            assertThrows(KvArgumentException.class, () -> s.keep(0, 0, new int[] {3}));
            assertThrows(KvArgumentException.class, () -> s.keep(0, KV_HEADS, new int[] {0}));
            assertThrows(KvArgumentException.class, () -> s.readKeys(0, 0, new float[3]));
            assertEquals(live, store.stats().liveBytes());
            for (int h = 0; h < KV_HEADS; h++) {
                assertHolds(s, 0, h, range(0, 3));
            }
            s.close();
            assertThrows(ClosedException.class, () -> s.append(0, ok, ok, 3), "use after close");
            assertThrows(ClosedException.class, s::fork);
        }
        assertThrows(KvArgumentException.class, () -> new KvLayout(1, 6, 4, 8, DType.F32, 4), "6 % 4 != 0");
        assertThrows(KvArgumentException.class, () -> new KvLayout(0, 4, 4, 8, DType.F32, 4));
        assertThrows(KvArgumentException.class, () -> KvStore.open(F32, new StoreConfig(10, 1 << 20)));
    }

    @ParameterizedTest
    @EnumSource(DType.class)   // quantised dtypes too: forks, keep and compaction move rows as bytes
    void compactionKeepsContentsAndRefreshesAddresses(DType dt) {
        KvLayout layout = new KvLayout(LAYERS, 6, KV_HEADS, DIM, dt, TPB);
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(16 * layout.blockBytes()))) {
            Sequence[] seqs = new Sequence[8];
            for (int i = 0; i < seqs.length; i++) {
                seqs[i] = store.newSequence();
                fill(seqs[i], 0, 8 + i);
            }
            for (int i = 0; i < seqs.length; i += 2) {
                seqs[i].close();
            }
            Random rnd = new Random(3);
            for (int i = 1; i < seqs.length; i += 2) {
                int len = seqs[i].length(0, 0);
                int[] keep = rnd.ints(0, len).distinct().limit(len / 2).sorted().toArray();
                seqs[i].keep(0, 0, keep);
            }
            long reserved = store.stats().reservedBytes();
            // what the kernel reads before compaction (its address arrays are built from the tables per call)
            float[] q = new float[layout.queryHeads() * DIM];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) Math.sin(i);
            }
            float[][] before = new float[seqs.length][];
            try (Attention att = Attention.create(1)) {
                for (int i = 1; i < seqs.length; i += 2) {
                    before[i] = new float[q.length];
                    att.decode(seqs[i], 0, q, before[i]);
                }
            }
            var r = store.compact();
            assertTrue(r.slabsReleased() > 0, "sparse slabs emptied and returned: " + r);
            assertTrue(store.stats().reservedBytes() < reserved);
            for (int i = 1; i < seqs.length; i += 2) {
                for (int h = 0; h < KV_HEADS; h++) {
                    assertHolds(seqs[i], 1, h, range(0, 8 + i));
                }
                float[] k = new float[seqs[i].length(0, 0) * DIM];
                seqs[i].readKeys(0, 0, k);
                // the kernel reads the moved blocks: bit-equal output to before the move
                float[] after = new float[q.length];
                try (Attention att = Attention.create(1)) {
                    att.decode(seqs[i], 0, q, after);
                }
                assertArrayEquals(before[i], after, "decode after compaction, sequence " + i);
                seqs[i].close();
            }
            assertEquals(0, store.stats().liveBytes());
        }
    }

    @Test
    void positionsMayBeSparseAndLarge() {
        try (KvStore store = KvStore.open(F32); Sequence s = store.newSequence()) {
            long[] pos = {5_000_000_000L, 5_000_000_007L, 6_000_000_000L};
            for (long p : pos) {
                for (int l = 0; l < LAYERS; l++) {
                    s.append(l, token(l, p, true), token(l, p, false), p);
                }
            }
            assertHolds(s, 0, 0, pos);
            assertEquals(Arrays.toString(pos), Arrays.toString(s.positions(1, 2)));
        }
    }

    /** Independent bf16 round-to-nearest-even of a finite float (what the store must keep). */
    static float bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(rounded & 0xFFFF0000);
    }
}
