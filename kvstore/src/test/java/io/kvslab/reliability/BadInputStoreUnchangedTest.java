package io.kvslab.reliability;

import io.kvslab.Attention;
import io.kvslab.internal.table.BlockStaging;
import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Port of the rest of E_BadInput: every nasty input ends in the named typed exception and leaves the store
 * (live blocks, reserved bytes, slabs, open sequences) and the sequence's rows exactly as they were.
 */
class BadInputStoreUnchangedTest {
    private static final int DIM = 64;

    private static String state(KvStore st, Sequence s) {
        var m = st.stats();
        StringBuilder sb = new StringBuilder(m.liveBlocks() + "/" + m.reservedBytes() + "/" + m.slabs() + "/"
                + st.stats().openSequences());
        for (int l = 0; l < 2; l++) {
            for (int h = 0; h < 2; h++) {
                float[] k = new float[s.length(l, h) * DIM];
                s.readKeys(l, h, k);
                sb.append('|').append(Arrays.toString(s.positions(l, h))).append(Arrays.hashCode(k))
                        .append(Arrays.toString(RawBlocks.blockIds(s, l, h, true)));
            }
        }
        return sb.toString();
    }

    private static <T extends Throwable> void unchanged(KvStore st, Sequence s, Class<T> type, Executable call) {
        String before = state(st, s);
        assertThrows(type, call);
        assertEquals(before, state(st, s));
    }

    @Test
    void everyBadInputIsTypedAndChangesNothing() {
        KvLayout layout = new KvLayout(2, 4, 2, DIM, DType.F16, 16);
        try (KvStore st = KvStore.open(layout, new StoreConfig(layout.blockBytes() * 16, layout.blockBytes() * 4))) {
            Sequence s = st.newSequence();
            float[] kv = new float[2 * DIM];
            for (int t = 0; t < 20; t++) {
                Arrays.fill(kv, t / 20f);
                s.append(0, kv, kv, t);
                s.append(1, kv, kv, t);
            }
            float[] x = kv.clone();
            x[0] = 65519f;   // rounds to 65504 in f16: out of range
            unchanged(st, s, KvArgumentException.class, () -> s.append(0, x, kv, 100));
            float[] nan = kv.clone();
            nan[3] = Float.NaN;
            unchanged(st, s, KvArgumentException.class, () -> s.append(0, nan, kv, 101));
            unchanged(st, s, KvArgumentException.class, () -> s.append(-1, kv, kv, 101));
            unchanged(st, s, KvArgumentException.class, () -> s.append(0, kv, kv, Long.MIN_VALUE));
            unchanged(st, s, KvArgumentException.class, () -> s.appendChunk(0, new float[4 * DIM],
                    new float[4 * DIM], new long[] {200, 201, 202}));
            unchanged(st, s, KvArgumentException.class, () -> s.keep(0, 0, new int[] {3, 1}));
            unchanged(st, s, KvArgumentException.class, () -> s.keep(0, 2, new int[] {0}));
            unchanged(st, s, KvArgumentException.class,
                    () -> s.shiftPositions(0, Sequence.END, Long.MAX_VALUE));
            unchanged(st, s, KvArgumentException.class, () -> s.removePositions(5, 2));
            unchanged(st, s, KvArgumentException.class, () -> s.readKeys(0, 0, new float[10]));
            float[] q = new float[4 * DIM];
            q[0] = Float.POSITIVE_INFINITY;
            try (Attention att = Attention.create(1)) {
                unchanged(st, s, KvArgumentException.class, () -> att.decode(s, 0, q, new float[4 * DIM]));
                unchanged(st, s, KvArgumentException.class, () -> att.decode(s, 0, new float[3], new float[3]));
                unchanged(st, s, KvArgumentException.class, () -> att.prefill(s, 0, new float[4 * DIM], 0,
                        new float[4 * DIM]));
            }
            unchanged(st, s, KvArgumentException.class, () -> Attention.create(0));
            long[] far = new long[200];
            for (int i = 0; i < far.length; i++) {
                far[i] = 1000 + i;
            }
            unchanged(st, s, MemoryLimitExceededException.class,
                    () -> s.appendChunk(1, new float[200 * 2 * DIM], new float[200 * 2 * DIM], far));
            try (KvStore other = KvStore.open(layout); BlockStaging staging = RawBlocks.stage(other, 1)) {
                assertThrows(KvArgumentException.class, () -> staging.write(0, new byte[10], 0, 1));   // 128-byte row
                assertThrows(KvArgumentException.class, () -> staging.write(1, new byte[128], 0, 1));
            }
            // keep on a forked (shared) table needs fresh blocks; with the store full it is refused, unchanged
            try (Sequence f = s.fork()) {
                java.util.List<BlockStaging> filler = new java.util.ArrayList<>();
                try {
                    while (true) {
                        filler.add(RawBlocks.stage(st, 1));
                    }
                } catch (MemoryLimitExceededException full) {
                    // every block slot under the limit is taken now (s alone fills this store's 16 blocks)
                }
                long[] keysBefore = RawBlocks.blockIds(f, 0, 0, true);
                unchanged(st, s, MemoryLimitExceededException.class, () -> s.keep(0, 0, new int[] {1, 2, 3}));
                assertArrayEquals(keysBefore, RawBlocks.blockIds(f, 0, 0, true), "the fork still names its blocks");
                filler.forEach(BlockStaging::close);
            }
            unchanged(st, s, MemoryLimitExceededException.class, () -> RawBlocks.stage(st, Integer.MAX_VALUE));
            assertThrows(KvSlabException.class, () -> s.keep(0, 0, null));
            s.close();
        }
    }
}
