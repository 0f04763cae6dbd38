package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import io.kvslab.internal.table.BlockStaging;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.internal.table.TableImage;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The content check the stress tests rely on sees a single flipped bit in native block memory. */
class StoredRowsTest {
    @Test
    void aFlippedBitInABlockIsReported() {
        for (DType dt : DType.values()) {
            KvLayout layout = new KvLayout(2, 4, 2, 16, dt, 4);
            StructuredKv gen = new StructuredKv(layout, 2, StructuredKv.Shape.realistic());
            try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
                int n = 10;
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = 100 + 3L * i;
                }
                float[] k = new float[n * 2 * 16];
                float[] v = new float[k.length];
                for (int l = 0; l < 2; l++) {
                    gen.keys(7, l, pos, k);
                    gen.values(7, l, pos, v);
                    s.appendChunk(l, k, v, pos);
                }
                long[] salts = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
                assertNull(StoredRows.mismatch(s, 1, 1, gen, pos, salts, n));
                // Another writer's salt, or a shifted position, is noticed.
                long[] other = salts.clone();
                other[9] = 8;
                assertNotNull(StoredRows.mismatch(s, 1, 1, gen, pos, other, n));
                long[] shifted = pos.clone();
                shifted[0] = 99;
                assertNotNull(StoredRows.mismatch(s, 1, 1, gen, shifted, salts, n));
                // Flip one bit of row 6 of the V block 1 (rows 4..7) of layer 1, head 1, in native memory: the
                // sequence's raw blocks are copied out, one byte changed, and written back through a restore
                // staging (no public path hands out block addresses any more).
                // (quantised rows: a code byte after the first group's 2-byte scale)
                flipValueBit(store, s, layout, (int) (2 * layout.rowBytes() + (dt.isQuantized() ? 2 + 3 : 3L * dt.bytes())));
                String msg = StoredRows.mismatch(s, 1, 1, gen, pos, salts, n);
                assertNotNull(msg, dt.name());
                assertTrue(msg.contains("row 6") && msg.contains("value"), msg);
                assertNull(StoredRows.mismatch(s, 1, 0, gen, s.positions(1, 0), salts, n), "other heads intact");
            }
        }
    }

    /** Rewrites s with its own raw rows, bit 4 of byte {@code off} of V block 1 of (layer 1, head 1) flipped. */
    private static void flipValueBit(KvStore store, Sequence s, KvLayout layout, int off) {
        int tpb = layout.tokensPerBlock();
        int rowBytes = (int) layout.rowBytes();
        int tables = layout.layers() * layout.kvHeads();
        int blocksPerTable = (s.length(0, 0) + tpb - 1) / tpb;
        try (BlockStaging staging = RawBlocks.stage(store, 2 * tables * blocksPerTable)) {
            TableImage[][] image = new TableImage[layout.layers()][layout.kvHeads()];
            int next = 0;
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    int rows = s.length(l, h);
                    int[] kb = new int[blocksPerTable];
                    int[] vb = new int[blocksPerTable];
                    for (int b = 0; b < blocksPerTable; b++) {
                        int r = Math.min(tpb, rows - b * tpb);
                        for (int kv = 0; kv < 2; kv++) {
                            byte[] buf = new byte[r * rowBytes];
                            RawBlocks.readRows(s, l, h, kv == 0, b, r, buf, 0);
                            if (kv == 1 && l == 1 && h == 1 && b == 1) {
                                buf[off] ^= 0x10;
                            }
                            staging.write(next, buf, 0, r);
                            (kv == 0 ? kb : vb)[b] = next++;
                        }
                    }
                    image[l][h] = new TableImage(s.positions(l, h), kb, vb);
                }
            }
            staging.commitInto(s, image);
        }
    }
}
