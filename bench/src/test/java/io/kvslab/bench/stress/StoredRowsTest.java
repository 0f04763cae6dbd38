package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The content check the stress tests rely on sees a single flipped bit in native block memory. */
class StoredRowsTest {
    @Test
    void aFlippedBitInABlockIsReported() {
        for (DType dt : DType.values()) {
            KvLayout layout = new KvLayout(2, 4, 2, 16, dt, 4);
            SyntheticKv gen = new SyntheticKv(layout, 2, SyntheticKv.Shape.realistic());
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
                // Flip one bit of row 6 of the V block 1 (rows 4..7) of layer 1, head 1, in native memory.
                MemorySegment block = MemorySegment.ofAddress(s.valueBlockAddress(1, 1, 1))
                        .reinterpret(layout.blockBytes());
                long off = 2 * layout.rowBytes() + 3L * dt.bytes();
                block.set(ValueLayout.JAVA_BYTE, off, (byte) (block.get(ValueLayout.JAVA_BYTE, off) ^ 0x10));
                String msg = StoredRows.mismatch(s, 1, 1, gen, pos, salts, n);
                assertNotNull(msg, dt.name());
                assertTrue(msg.contains("row 6") && msg.contains("value"), msg);
                assertNull(StoredRows.mismatch(s, 1, 0, gen, s.positions(1, 0), salts, n), "other heads intact");
            }
        }
    }
}
