package io.kvslab;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static io.kvslab.SequenceAttentionTest.fill;
import static io.kvslab.SequenceAttentionTest.maxDecodeError;
import static io.kvslab.SequenceAttentionTest.random;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One {@link Attention} reuses the block-address arrays it built for a layer while the tables and the slab placement
 * are unchanged. Each case changes one of them (or makes another kind of call: a prefill; batches are in
 * {@code BatchDecodeTest}) between two calls on the same instance and checks the second call
 * against the plain-Java reference over what the store holds now: a stale address array would read the old rows
 * (wrong result) or freed memory.
 */
class AttentionAddressCacheTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 8, 4, 32, DType.F32, 8);

    @Test
    void appendKeepAndForkBetweenCallsAreSeen() {
        Random rnd = new Random(3);
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence(); Attention att = Attention.create(2)) {
            fill(s, rnd, 100);
            for (int i = 0; i < 3; i++) {   // repeated calls on unchanged tables (the cached path)
                assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "unchanged tables, call " + i);
            }
            int width = LAYOUT.kvHeads() * LAYOUT.headDim();
            s.append(0, random(rnd, width, 1f), random(rnd, width, 1f), 100);   // one row more, same last block
            assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "after an append into the tail block");
            for (int p = 101; p < 110; p++) {   // crosses into a new block
                s.append(0, random(rnd, width, 1f), random(rnd, width, 1f), p);
            }
            assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "after appends that add a block");
            int qWidth = LAYOUT.queryHeads() * LAYOUT.headDim();   // a prefill of the last 3 rows between decodes
            att.prefill(s, 0, random(rnd, 3 * qWidth, 1f), 3, new float[3 * qWidth]);
            assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "after a prefill on the same instance");
            s.keep(0, 1, new int[] {0, 5, 99, 109});
            assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "after keep");
            assertTrue(maxDecodeError(s, att, 1, rnd) <= 1e-5, "another layer");
            try (Sequence f = s.fork()) {
                f.append(0, random(rnd, width, 1f), random(rnd, width, 1f), 110);
                assertTrue(maxDecodeError(f, att, 0, rnd) <= 1e-5, "the fork (other tables)");
                assertTrue(maxDecodeError(s, att, 0, rnd) <= 1e-5, "back to the parent");
            }
        }
    }

    @Test
    void compactionThatMovesTheBlocksIsSeen() {
        Random rnd = new Random(5);
        // small slabs of 24 blocks, filled 16 blocks at a time by each sequence in turn: closing one leaves slabs a
        // third or two thirds full, and compaction moves the sparse ones
        StoreConfig config = StoreConfig.defaults().withSlabBytes(LAYOUT.blockBytes() * 24);
        try (KvStore store = KvStore.open(LAYOUT, config); Attention att = Attention.create(1)) {
            Sequence kept = store.newSequence();
            Sequence dropped = store.newSequence();
            int width = LAYOUT.kvHeads() * LAYOUT.headDim();
            for (int p = 0; p < 64; p++) {
                for (Sequence s : new Sequence[] {kept, dropped}) {
                    for (int layer = 0; layer < LAYOUT.layers(); layer++) {
                        s.append(layer, random(rnd, width, 1f), random(rnd, width, 1f), p);
                    }
                }
            }
            assertTrue(maxDecodeError(kept, att, 0, rnd) <= 1e-5, "before compaction");
            dropped.close();
            CompactionResult moved = store.compact();
            assertTrue(moved.blocksMoved() > 0, "the test needs a compaction that moves blocks, got " + moved);
            // new blocks reuse the freed slots (and the spare slab): a stale address would now read their rows
            try (Sequence filler = store.newSequence()) {
                fill(filler, rnd, 64);
                assertTrue(maxDecodeError(kept, att, 0, rnd) <= 1e-5, "after compaction moved blocks");
                assertTrue(maxDecodeError(kept, att, 1, rnd) <= 1e-5, "after compaction, layer 1");
            }
            kept.close();
        }
    }
}
