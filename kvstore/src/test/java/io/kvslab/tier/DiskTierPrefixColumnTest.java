package io.kvslab.tier;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.internal.tier.BlockRecord;
import io.kvslab.internal.tier.BlockRecords;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The disk tier holds cold prefix blocks too (issue 16): a prefix column (block i of every (layer, KV head), K
 * and V, scope-ALL record) written by one tier instance is read back after a restart, byte for byte equal to the
 * sequence's stored rows; and the same directory opened by a store of another layout rejects it by fingerprint.
 */
class DiskTierPrefixColumnTest {
    @TempDir
    Path dir;

    @Test
    void aPrefixColumnSurvivesARestartBitwise() {
        KvLayout layout = new KvLayout(2, 4, 2, 8, DType.BF16, 4);
        int tpb = layout.tokensPerBlock();
        int part = (int) (tpb * layout.rowBytes());
        try (KvStore store = KvStore.open(layout); Sequence s = store.newSequence()) {
            for (int l = 0; l < layout.layers(); l++) {
                for (int p = 0; p < 9; p++) {
                    float[] k = new float[layout.kvHeads() * layout.headDim()];
                    float[] v = new float[k.length];
                    for (int i = 0; i < k.length; i++) {
                        k[i] = (float) Math.sin(l * 3 + p * 0.7 + i);
                        v[i] = (float) Math.cos(l * 5 + p * 0.3 + i);
                    }
                    s.append(l, k, v, p);
                }
            }
            // Column 1 (positions 4..7), laid out as the format says: tables layer-major, K then V rows.
            byte[] rows = new byte[2 * layout.layers() * layout.kvHeads() * part];
            int off = 0;
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    RawBlocks.readRows(s, l, h, true, 1, tpb, rows, off);
                    RawBlocks.readRows(s, l, h, false, 1, tpb, rows, off + part);
                    off += 2 * part;
                }
            }
            long[] positions = {4, 5, 6, 7};
            BlockKey key = new BlockKey(0x5eedL, 1);
            try (DiskTier tier = DiskTier.open(dir, 1 << 20)) {
                tier.put(key, BlockRecords.encode(layout, new BlockRecord(BlockRecord.Kind.KEYS_AND_VALUES,
                        BlockRecord.ALL, BlockRecord.ALL, positions, rows)));
            }
            try (DiskTier tier = DiskTier.open(dir, 1 << 20)) {   // a restart: read back on demand
                BlockRecord r = BlockRecords.decode(layout, key, tier.get(key).orElseThrow());
                BlockRecords.expect(r, key, BlockRecord.Kind.KEYS_AND_VALUES, BlockRecord.ALL, BlockRecord.ALL,
                        positions);
                byte[] v = new byte[part];
                RawBlocks.readRows(s, 1, 1, false, 1, tpb, v, 0);
                int at = BlockRecords.rowsOffset(layout, r, 1, 1, false);
                assertArrayEquals(v, Arrays.copyOfRange(r.rows(), at, at + part), "V rows of layer 1, KV head 1");
                assertArrayEquals(rows, r.rows());

                KvLayout other = new KvLayout(2, 4, 2, 8, DType.F16, 4);
                assertEquals(TierRecordException.Reason.LAYOUT_MISMATCH, assertThrows(TierRecordException.class,
                        () -> BlockRecords.decode(other, key, tier.get(key).orElseThrow())).reason());
            }
        }
    }
}
