package io.kvslab.tier;

import io.kvslab.Attention;
import io.kvslab.ClosedException;
import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.internal.table.RawBlocks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Swapping sequences out to a tier and back: bitwise equality of rows, positions and attention outputs against the
 * state captured before the swap (f32, f16, bf16; forks; ragged tables after compression; PoD key aliases), native
 * bytes, and every failure path leaving the store unchanged.
 */
class SwapTest {
    @TempDir
    Path dir;

    private static KvLayout layout(DType dtype) {
        return new KvLayout(3, 4, 2, 8, dtype, 4);
    }

    private static float value(int l, int h, long p, int d, boolean key, int salt) {
        return (float) Math.sin(0.5 + l * 5.3 + h * 2.9 + p * 0.41 + d * 1.7 + (key ? 0 : 13.0) + salt * 0.77) * 3f;
    }

    private static void fill(Sequence s, long from, long to, int salt) {
        KvLayout layout = s.layout();
        int dim = layout.headDim();
        for (int l = 0; l < layout.layers(); l++) {
            for (long p = from; p < to; p++) {
                float[] k = new float[layout.kvHeads() * dim];
                float[] v = new float[k.length];
                for (int h = 0; h < layout.kvHeads(); h++) {
                    for (int d = 0; d < dim; d++) {
                        k[h * dim + d] = value(l, h, p, d, true, salt);
                        v[h * dim + d] = value(l, h, p, d, false, salt);
                    }
                }
                s.append(l, k, v, p);
            }
        }
    }

    /** Every stored byte of one K or V table (only the rows it holds). */
    private static byte[] raw(Sequence s, int l, int h, boolean keys) {
        KvLayout layout = s.layout();
        int tpb = layout.tokensPerBlock();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[(int) layout.blockBytes()];
        for (int b = 0; b < s.blockCount(l, h); b++) {
            int rows = Math.min(tpb, s.length(l, h) - b * tpb);
            RawBlocks.readRows(s, l, h, keys, b, rows, buf, 0);
            out.write(buf, 0, (int) (rows * layout.rowBytes()));
        }
        return out.toByteArray();
    }

    /** Everything observable of a sequence: per table positions, raw K, raw V, key alias bases; attention outputs. */
    private record State(List<long[]> positions, List<byte[]> keys, List<byte[]> values, List<int[]> bases,
                         List<float[]> outputs) {
        void assertSame(State o) {
            assertEquals(positions.size(), o.positions.size());
            for (int i = 0; i < positions.size(); i++) {
                assertArrayEquals(positions.get(i), o.positions.get(i), "positions of table " + i);
                assertArrayEquals(keys.get(i), o.keys.get(i), "K bytes of table " + i);
                assertArrayEquals(values.get(i), o.values.get(i), "V bytes of table " + i);
                assertArrayEquals(bases.get(i), o.bases.get(i), "key alias bases of table " + i);
            }
            for (int l = 0; l < outputs.size(); l++) {
                assertArrayEquals(outputs.get(l), o.outputs.get(l), "attention output of layer " + l);
            }
        }
    }

    private static State state(Sequence s) {
        KvLayout layout = s.layout();
        List<long[]> pos = new ArrayList<>();
        List<byte[]> k = new ArrayList<>();
        List<byte[]> v = new ArrayList<>();
        List<int[]> bases = new ArrayList<>();
        for (int l = 0; l < layout.layers(); l++) {
            for (int h = 0; h < layout.kvHeads(); h++) {
                pos.add(s.positions(l, h));
                k.add(raw(s, l, h, true));
                v.add(raw(s, l, h, false));
                int[] b = new int[s.blockCount(l, h)];
                for (int i = 0; i < b.length; i++) {
                    b[i] = s.keyBlockBaseLayer(l, h, i);
                }
                bases.add(b);
            }
        }
        List<float[]> outs = new ArrayList<>();
        try (Attention att = Attention.create(1)) {
            float[] q = new float[layout.queryHeads() * layout.headDim()];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) Math.cos(i * 0.37) * 2f;
            }
            for (int l = 0; l < layout.layers(); l++) {
                float[] out = new float[q.length];
                att.decode(s, l, q, out);
                outs.add(out);
            }
        }
        return new State(pos, k, v, bases, outs);
    }

    private static long live(KvStore store) {
        return store.stats().liveBytes();
    }

    private Path recordFile(SwappedSequence h, int i) {
        return dir.resolve(h.keys().get(i).hex() + ".kvb");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void aSwappedSequenceComesBackBitwise(DType dtype) {
        KvLayout layout = layout(dtype);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 37, 0);   // 10 blocks per table, the last holding 1 row
            s.removePositions(5, 9);
            s.shiftPositions(20, Sequence.END, 100);   // positions no longer dense
            State before = state(s);
            long liveBefore = live(store);
            long referenced = s.referencedBytes();

            SwappedSequence h = s.swapOut(tier);
            assertTrue(s.isClosed());
            assertEquals(0, live(store), "every block freed");
            assertEquals(0, store.sequences().size());
            assertEquals(9, h.keys().size(), "a dense sequence: one column record (every table, K and V) per block");
            assertEquals(tier.records(), h.keys().size());
            assertEquals(referenced, h.blockBytes());
            assertEquals(tier.stats().bytesHeld(), h.recordBytes());
            assertArrayEquals(before.positions().get(3), h.positions(1, 1));
            assertEquals(33, h.length(2, 0));
            assertTrue(h.isOpen());

            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            assertEquals(liveBefore, live(store), "native bytes back to the pre-swap value");
            assertFalse(h.isOpen());
            assertEquals(0, tier.records(), "records removed after the swap-in");
            assertThrows(ClosedException.class, () -> store.swapIn(h));

            fill(back, 200, 203, 0);   // the restored sequence is an ordinary one
            assertEquals(36, back.length(0, 0));
            back.close();
            assertEquals(0, live(store));
        }
    }

    @Test
    void anEmptySequenceSwapsToNoRecords() {
        try (KvStore store = KvStore.open(layout(DType.F32)); DiskTier tier = DiskTier.open(dir, 1 << 20)) {
            SwappedSequence h = store.newSequence().swapOut(tier);
            assertEquals(0, h.keys().size());
            Sequence back = store.swapIn(h);
            assertEquals(0, back.length(1, 1));
            back.close();
        }
    }

    @Test
    void forksKeepTheirSharedBlocks() {
        KvLayout layout = layout(DType.F16);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence parent = store.newSequence();
            fill(parent, 0, 18, 0);            // 4 full blocks and a partial one per table
            Sequence child = parent.fork();
            fill(child, 18, 21, 1);            // copy-on-write of the shared partial tail
            State parentBefore = state(parent);
            State childBefore = state(child);
            long liveBefore = live(store);

            // Blocks of the child still named by the parent: they must stay live through the swap.
            long sharedBlocks = 0;
            long childBlocks = 0;
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    for (boolean keys : new boolean[] {true, false}) {
                        Set<Long> p = new HashSet<>();
                        for (long id : RawBlocks.blockIds(parent, l, h, keys)) {
                            p.add(id);
                        }
                        for (long id : RawBlocks.blockIds(child, l, h, keys)) {
                            childBlocks++;
                            sharedBlocks += p.contains(id) ? 1 : 0;
                        }
                    }
                }
            }
            assertEquals(2 * 3 * 2 * 4, sharedBlocks, "the four full blocks of each table are shared");

            SwappedSequence h = child.swapOut(tier);
            assertEquals(childBlocks * layout.blockBytes(), h.blockBytes());
            assertEquals(6, h.keys().size(), "21 dense rows: 6 column records");
            parentBefore.assertSame(state(parent));
            assertEquals(liveBefore - (childBlocks - sharedBlocks) * layout.blockBytes(), live(store),
                    "only the child's own blocks were freed");

            Sequence back = store.swapIn(h);
            childBefore.assertSame(state(back));
            parentBefore.assertSame(state(parent));
            assertEquals(liveBefore + sharedBlocks * layout.blockBytes(), live(store),
                    "the swapped-in child holds private copies of the blocks it shared");

            // And the other way round: swap the parent out while the child lives.
            SwappedSequence hp = parent.swapOut(tier);
            childBefore.assertSame(state(back));
            Sequence parentBack = store.swapIn(hp);
            parentBefore.assertSame(state(parentBack));
            parentBack.close();
            back.close();
            assertEquals(0, live(store));
        }
    }

    @Test
    void prefixCacheBlocksStayCached() {
        KvLayout layout = layout(DType.F16);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            int[] tokens = new int[12];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = 100 + i;
            }
            Sequence s = store.newSequence();
            fill(s, 0, 14, 0);
            try (io.kvslab.PrefixCache cache = io.kvslab.PrefixCache.create(store)) {
                assertEquals(3, cache.insert(s, tokens, 7));
                State before = state(s);
                long liveBefore = live(store);
                long cachedBytes = 3L * 2 * layout.layers() * layout.kvHeads() * layout.blockBytes();

                SwappedSequence h = s.swapOut(tier);
                assertEquals(cachedBytes, live(store), "the cache keeps its blocks");
                io.kvslab.PrefixMatch m = cache.lookup(tokens, 7);
                assertEquals(12, m.matchedTokens());
                try (Sequence hit = m.sequence()) {
                    for (int l = 0; l < layout.layers(); l++) {
                        for (int hd = 0; hd < layout.kvHeads(); hd++) {
                            int table = l * layout.kvHeads() + hd;
                            int bytes = (int) (12 * layout.rowBytes());
                            assertArrayEquals(Arrays.copyOf(before.keys().get(table), bytes), raw(hit, l, hd, true));
                        }
                    }
                }
                Sequence back = store.swapIn(h);
                before.assertSame(state(back));
                assertEquals(liveBefore + cachedBytes, live(store), "the swapped-in copy is private");
                back.close();
            }
        }
    }

    @Test
    void raggedTablesAfterCompressionComeBack() {
        KvLayout layout = layout(DType.BF16);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 30, 0);
            s.keep(0, 0, new int[] {0, 1, 2, 7, 11, 29});
            s.keep(1, 1, new int[] {3, 4, 5, 6, 8, 9, 10, 12, 13, 20, 21, 22, 23, 24, 28});
            s.keep(2, new int[][] {{0, 29}, {5}});
            State before = state(s);
            long liveBefore = live(store);
            assertNotEquals(s.length(0, 0), s.length(1, 1));

            SwappedSequence h = s.swapOut(tier);
            // The tables hold different rows at every block index: every distinct block goes as its own record.
            assertEquals(h.blockBytes() / layout.blockBytes(), h.keys().size());
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            assertEquals(6, back.length(0, 0));
            assertEquals(1, back.length(2, 1));
            assertEquals(30, back.length(0, 1));
            assertEquals(liveBefore, live(store));
            back.close();
        }
    }

    @Test
    void aMostlyDenseSequenceMixesColumnAndBlockRecords() {
        KvLayout layout = layout(DType.F16);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 16, 0);
            int[] rows = new int[13];
            for (int i = 0; i < 12; i++) {
                rows[i] = i;
            }
            rows[12] = 13;
            s.keep(2, 1, rows);   // blocks 0-2 untouched; block 3 of this table holds only position 13
            State before = state(s);
            long liveBefore = live(store);
            SwappedSequence h = s.swapOut(tier);
            assertEquals(3 + 2 * 3 * 2, h.keys().size(), "3 column records, then block 3 of each table alone");
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            assertEquals(liveBefore, live(store));
            back.close();
        }
    }

    @Test
    void podKeyAliasesStayShared() {
        KvLayout layout = layout(DType.F32);
        try (KvStore store = KvStore.open(layout); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 14, 0);
            for (int h = 0; h < layout.kvHeads(); h++) {
                assertTrue(s.aliasKeyBlock(1, h, 0, 0));
                assertTrue(s.aliasKeyBlock(2, h, 0, 0));
                assertTrue(s.aliasKeyBlock(2, h, 1, 1));
            }
            State before = state(s);
            long liveBefore = live(store);

            SwappedSequence h = s.swapOut(tier);
            // 3 layers x 2 heads x 4 blocks x (K + V) = 48 slots; 3 aliases per head name existing K blocks
            assertEquals((48 - 3 * layout.kvHeads()) * layout.blockBytes(), h.blockBytes(),
                    "an aliased block is written once");
            // columns 2 and 3 go as column records; columns 0 and 1 hold aliases, so their distinct blocks go one
            // by one: per KV head 4 in column 0 (K of layer 0, V of layers 0-2) and 5 in column 1
            assertEquals(2 + layout.kvHeads() * (4 + 5), h.keys().size());
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));   // includes keyBlockBaseLayer of every block
            assertTrue(back.isKeyBlockAliased(2, 1, 0));
            assertEquals(0, back.keyBlockBaseLayer(2, 1, 0));
            assertEquals(1, back.keyBlockBaseLayer(2, 1, 1));
            assertEquals(liveBefore, live(store), "aliases share one block again");
            back.close();
        }
    }

    @Test
    void aLostRecordFailsTheSwapInAndLeavesTheStoreUnchanged() throws IOException {
        try (KvStore store = KvStore.open(layout(DType.F16)); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence other = store.newSequence();
            fill(other, 0, 9, 3);
            Sequence s = store.newSequence();
            fill(s, 0, 11, 0);
            State before = state(s);
            SwappedSequence h = s.swapOut(tier);
            long liveAfterSwap = live(store);
            State otherBefore = state(other);
            int records = h.keys().size();

            assertEquals(3, records);
            Files.delete(recordFile(h, 1));
            TierRecordException e = assertThrows(TierRecordException.class, () -> store.swapIn(h));
            assertEquals(TierRecordException.Reason.MISSING, e.reason());
            assertEquals(h.keys().get(1), e.key());
            assertEquals(liveAfterSwap, live(store), "the reserved blocks were freed");
            assertEquals(List.of(other), store.sequences());
            otherBefore.assertSame(state(other));
            assertTrue(h.isOpen(), "a failed swap-in keeps the handle");
            assertEquals(records - 1, tier.records());

            h.close();   // the caller recomputes: closing removes the records
            assertEquals(0, tier.records());
            assertFalse(h.isOpen());
            assertThrows(ClosedException.class, () -> store.swapIn(h));
            assertEquals(11, before.positions().get(0).length);
            other.close();
        }
    }

    @Test
    void aCorruptRecordIsRejectedByItsChecksum() throws IOException {
        try (KvStore store = KvStore.open(layout(DType.F32)); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 7, 0);
            State before = state(s);
            SwappedSequence h = s.swapOut(tier);
            Path f = recordFile(h, 1);
            byte[] b = Files.readAllBytes(f);
            b[b.length / 2] ^= 0x10;
            Files.write(f, b);
            assertEquals(TierRecordException.Reason.CHECKSUM_MISMATCH,
                    assertThrows(TierRecordException.class, () -> store.swapIn(h)).reason());
            assertEquals(0, live(store));
            b[b.length / 2] ^= 0x10;   // repaired: the same handle swaps in
            Files.write(f, b);
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            back.close();
        }
    }

    @Test
    void anotherIntactRecordUnderTheKeyIsRejected() throws IOException {
        try (KvStore store = KvStore.open(layout(DType.F32)); DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence a = store.newSequence();
            fill(a, 0, 7, 0);
            Sequence b = store.newSequence();
            fill(b, 0, 7, 1);   // same shape and positions, other values
            SwappedSequence ha = a.swapOut(tier);
            SwappedSequence hb = b.swapOut(tier);
            Files.copy(recordFile(hb, 0), recordFile(ha, 0), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            TierRecordException e = assertThrows(TierRecordException.class, () -> store.swapIn(ha));
            assertEquals(TierRecordException.Reason.UNEXPECTED_CONTENT, e.reason());
            // A record of another table (other layer) under the key: caught by kind/table before the CRC.
            Files.copy(recordFile(hb, hb.keys().size() - 1), recordFile(ha, 0),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            assertEquals(TierRecordException.Reason.UNEXPECTED_CONTENT,
                    assertThrows(TierRecordException.class, () -> store.swapIn(ha)).reason());
            assertEquals(0, live(store));
            ha.close();
            store.swapIn(hb).close();
        }
    }

    /** A tier that stores in memory and declines every put after the first {@code accept}. */
    private static final class DecliningTier implements BlockTier {
        final java.util.Map<BlockKey, byte[]> map = new java.util.concurrent.ConcurrentHashMap<>();
        final AtomicInteger accept;

        DecliningTier(int accept) {
            this.accept = new AtomicInteger(accept);
        }

        @Override
        public String name() {
            return "declining";
        }

        @Override
        public boolean put(BlockKey key, byte[] record) {
            if (accept.getAndDecrement() <= 0) {
                map.put(key, Arrays.copyOf(record, 3));   // a failed put may leave a partial value
                return false;
            }
            map.put(key, record.clone());
            return true;
        }

        @Override
        public Optional<byte[]> get(BlockKey key) {
            return Optional.ofNullable(map.get(key));
        }

        @Override
        public boolean remove(BlockKey key) {
            return map.remove(key) != null;
        }

        @Override
        public TierStats stats() {
            return new TierStats(0, 0, 0, 0, 0, 0, 0, 0, -1);
        }

        @Override
        public void close() {}
    }

    @Test
    void aDecliningTierLeavesTheSequenceInMemory() {
        try (KvStore store = KvStore.open(layout(DType.F16))) {
            Sequence s = store.newSequence();
            fill(s, 0, 10, 0);
            State before = state(s);
            long liveBefore = live(store);
            DecliningTier tier = new DecliningTier(2);   // of 3 column records
            TierRecordException e = assertThrows(TierRecordException.class, () -> s.swapOut(tier));
            assertEquals(TierRecordException.Reason.DECLINED, e.reason());
            assertTrue(e.getMessage().contains("tier declining declined record 3 of 3"), e.getMessage());
            assertNotNull(e.key(), "the declined record's key");
            assertFalse(s.isClosed());
            before.assertSame(state(s));
            assertEquals(liveBefore, live(store));
            assertTrue(tier.map.isEmpty(), "records written before the refusal were removed");
            s.close();
        }
    }

    @Test
    void aSwapInThatDoesNotFitKeepsItsHandle() {
        KvLayout layout = layout(DType.F32);
        long limit = 64 * layout.blockBytes();
        try (KvStore store = KvStore.open(layout, new StoreConfig(limit, 16 * layout.blockBytes()));
             DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 16, 0);   // 3 x 2 x 4 x 2 = 48 blocks
            State before = state(s);
            SwappedSequence h = s.swapOut(tier);
            Sequence hog = store.newSequence();
            fill(hog, 0, 8, 1);  // 24 blocks: 48 more do not fit under 64
            long liveWithHog = live(store);
            assertThrows(MemoryLimitExceededException.class, () -> store.swapIn(h));
            assertEquals(liveWithHog, live(store));
            assertTrue(h.isOpen());
            hog.close();
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            back.close();
        }
    }

    @Test
    void aPressureHandlerCanSwapAVictimOut() {
        KvLayout layout = layout(DType.F32);
        long limit = 64 * layout.blockBytes();
        try (KvStore store = KvStore.open(layout, new StoreConfig(limit, 16 * layout.blockBytes()));
             DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence victim = store.newSequence();
            fill(victim, 0, 16, 0);   // 48 blocks
            State victimBefore = state(victim);
            List<SwappedSequence> swapped = new ArrayList<>();
            store.addPressureHandler(p -> {
                Optional<SwappedSequence> h = p.trySwapOut(victim, tier);
                h.ifPresent(swapped::add);
                return h.isPresent();
            });
            Sequence requester = store.newSequence();
            fill(requester, 0, 12, 1);   // 36 blocks: fits only once the victim is swapped out
            assertEquals(1, swapped.size());
            assertTrue(victim.isClosed());
            assertEquals(12, requester.length(2, 1));
            requester.close();
            Sequence back = store.swapIn(swapped.get(0));
            victimBefore.assertSame(state(back));
            back.close();
        }
    }

    @Test
    void aSwapOutRacingDecodesAndCompactionWaitsForThem() throws Exception {
        KvLayout layout = layout(DType.F16);
        try (KvStore store = KvStore.open(layout, new StoreConfig(Long.MAX_VALUE, 8 * layout.blockBytes()));
             DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence churn = store.newSequence();
            fill(churn, 0, 40, 2);
            Sequence s = store.newSequence();
            fill(s, 0, 23, 0);
            churn.close();   // sparse slabs: compaction has blocks to move
            State before = state(s);
            java.util.concurrent.atomic.AtomicReference<Throwable> unexpected = new java.util.concurrent.atomic.AtomicReference<>();
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(2);
            Thread decoder = Thread.ofPlatform().start(() -> {
                float[] q = new float[layout.queryHeads() * layout.headDim()];
                float[] out = new float[q.length];
                try (Attention att = Attention.create(1)) {
                    started.countDown();
                    while (true) {
                        att.decode(s, 1, q, out);
                    }
                } catch (ClosedException expected) {
                    // the swap-out closed the sequence between two decodes
                } catch (Throwable t) {
                    unexpected.set(t);
                }
            });
            Thread compactor = Thread.ofPlatform().start(() -> {
                started.countDown();
                try {
                    for (int i = 0; i < 20; i++) {
                        store.compact();
                    }
                } catch (Throwable t) {
                    unexpected.set(t);
                }
            });
            started.await();
            SwappedSequence h = s.swapOut(tier);
            decoder.join();
            compactor.join();
            assertEquals(null, unexpected.get());
            Sequence back = store.swapIn(h);
            before.assertSame(state(back));
            back.close();
        }
    }

    @Test
    void callerMistakesAreTyped() {
        try (KvStore store = KvStore.open(layout(DType.F32)); KvStore other = KvStore.open(layout(DType.F16));
             DiskTier tier = DiskTier.open(dir, 1 << 24)) {
            Sequence s = store.newSequence();
            fill(s, 0, 3, 0);
            assertThrows(KvArgumentException.class, () -> s.swapOut(null));
            SwappedSequence h = s.swapOut(tier);
            assertThrows(ClosedException.class, () -> s.swapOut(tier), "a swapped-out sequence is closed");
            assertThrows(KvArgumentException.class, () -> other.swapIn(h));
            assertThrows(KvArgumentException.class, () -> store.swapIn(null));
            assertThrows(KvArgumentException.class, () -> store.swapIn(new SwappedSequence() {
                public long sequenceId() { return 0; }
                public KvLayout layout() { return store.layout(); }
                public BlockTier tier() { return tier; }
                public List<BlockKey> keys() { return List.of(); }
                public long recordBytes() { return 0; }
                public long blockBytes() { return 0; }
                public int length(int layer, int kvHead) { return 0; }
                public long[] positions(int layer, int kvHead) { return new long[0]; }
                public boolean isOpen() { return true; }
                public void close() {}
            }));
            assertThrows(KvArgumentException.class, () -> h.length(3, 0));
            assertTrue(h.isOpen());
            h.close();
            h.close();
            assertEquals(0, tier.records());
        }
    }
}
