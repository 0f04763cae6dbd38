package io.kvslab.internal.tier;

import io.kvslab.ClosedException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.internal.table.BlockStaging;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.internal.table.SwapImage;
import io.kvslab.internal.table.TableAccess;
import io.kvslab.internal.table.TableImage;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.SwappedSequence;
import io.kvslab.tier.TierRecordException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Swapping a sequence out to a {@link BlockTier} and back (docs/tiers.md, "Swap"). One record per dense column
 * of blocks, or per distinct block elsewhere ({@link SwapImage}); keys are {@code (random swap id, record index)}, so swaps of different sequences, stores
 * or processes sharing a tier never collide.
 */
public final class Swap {
    private static final SecureRandom RANDOM = new SecureRandom();

    private Swap() {}

    /** See {@link Sequence#swapOut}. */
    public static SwappedSequence swapOut(Sequence sequence, BlockTier tier) {
        if (sequence == null || tier == null) {
            throw new KvArgumentException("sequence and tier must not be null");
        }
        long swapId = RANDOM.nextLong();
        return TableAccess.of(sequence).swapOut(image -> write(sequence.id(), image, tier, swapId));
    }

    /** Largest column record swap writes; a larger column goes as one record per block. */
    static final long MAX_COLUMN_RECORD_BYTES = 64L << 20;

    /**
     * Writes the image as records: a column whose blocks are all first used there and hold the same positions in
     * every (layer, KV head) goes as one record of every table (scope 1, K and V, the prefix-cache column form),
     * so a dense sequence costs one record per block index instead of {@code 2 x layers x kvHeads}; every other
     * distinct block (ragged tables after compression, PoD aliases, oversized columns) as one record of its own.
     */
    private static SwappedImage write(long sequenceId, SwapImage image, BlockTier tier, long swapId) {
        KvLayout layout = image.layout();
        List<Planned> plan = plan(image);
        List<BlockKey> keys = new ArrayList<>(plan.size());
        int[] crcs = new int[plan.size()];
        long bytes = 0;
        byte[] block = new byte[Math.toIntExact(Math.max(layout.keyBlockBytes(), layout.valueBlockBytes()))];
        try {
            for (int r = 0; r < plan.size(); r++) {
                Planned p = plan.get(r);
                int rows = p.positions.length;
                long size = 0;
                for (int i = 0; i < p.staged.length; i++) {
                    size += rows * layout.rowBytes(p.isKeys(i));
                }
                byte[] payload = new byte[Math.toIntExact(size)];
                int at = 0;
                for (int i = 0; i < p.staged.length; i++) {
                    int part = Math.toIntExact(rows * layout.rowBytes(p.isKeys(i)));
                    image.read(p.staged[i], block);
                    System.arraycopy(block, 0, payload, at, part);
                    at += part;
                }
                byte[] record = BlockRecords.encode(layout,
                        new BlockRecord(p.kind, p.layer, p.kvHead, p.positions, payload));
                BlockKey key = new BlockKey(swapId, r);
                keys.add(key);   // before the put: a failed put may leave a partial value to remove
                if (!tier.put(key, record)) {
                    throw new TierRecordException(TierRecordException.Reason.DECLINED, key, "tier " + tier.name() + " declined record " + (r + 1)
                            + " of " + plan.size() + " (" + record.length + " bytes) of sequence " + sequenceId
                            + "; the sequence stays in memory and the records written are removed");
                }
                crcs[r] = crcOf(record);
                bytes += record.length;
            }
        } catch (RuntimeException e) {
            removeQuietly(tier, keys);
            throw e;
        }
        return new SwappedImage(sequenceId, layout, tier, image.tables(), image.blocks(), keys, crcs, plan, bytes);
    }

    /**
     * One record to write: its header fields and the staged (distinct) block of each part, in the record's order
     * (for a column: layer-major, KV head, K then V).
     */
    record Planned(BlockRecord.Kind kind, int layer, int kvHead, long[] positions, int[] staged) {
        /** Whether staged block i of this record holds K rows: a K-and-V column alternates K, V per table. */
        boolean isKeys(int i) {
            return switch (kind) {
                case KEYS -> true;
                case VALUES -> false;
                case KEYS_AND_VALUES -> i % 2 == 0;
            };
        }
    }

    private static List<Planned> plan(SwapImage image) {
        KvLayout layout = image.layout();
        int layers = layout.layers();
        int kvHeads = layout.kvHeads();
        TableImage[][] tables = image.tables();
        int columns = 0;
        for (TableImage[] layer : tables) {
            for (TableImage t : layer) {
                columns = Math.max(columns, t.keyBlocks().length);
            }
        }
        List<Planned> plan = new ArrayList<>();
        boolean[] covered = new boolean[image.blocks()];
        for (int c = 0; c < columns; c++) {
            int[] staged = column(image, tables, c, layers, kvHeads);
            if (staged != null) {
                plan.add(new Planned(BlockRecord.Kind.KEYS_AND_VALUES, BlockRecord.ALL, BlockRecord.ALL,
                        image.positions(staged[0]), staged));
                for (int b : staged) {
                    covered[b] = true;
                }
            }
        }
        for (int b = 0; b < image.blocks(); b++) {
            if (!covered[b]) {
                plan.add(new Planned(image.isKeys(b) ? BlockRecord.Kind.KEYS : BlockRecord.Kind.VALUES,
                        image.layer(b), image.kvHead(b), image.positions(b), new int[] {b}));
            }
        }
        return plan;
    }

    /** The distinct blocks of column {@code c} in record order if it can go as one column record, else null. */
    private static int[] column(SwapImage image, TableImage[][] tables, int c, int layers, int kvHeads) {
        long[] positions = null;
        int[] staged = new int[2 * layers * kvHeads];
        int i = 0;
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < kvHeads; h++) {
                TableImage t = tables[l][h];
                if (t.keyBlocks().length <= c) {
                    return null;
                }
                for (int b : new int[] {t.keyBlocks()[c], t.valueBlocks()[c]}) {
                    if (image.layer(b) != l || image.kvHead(b) != h || image.blockIndex(b) != c
                            || image.isKeys(b) != (i % 2 == 0)) {
                        return null;   // first used elsewhere (an alias): it goes in its own record
                    }
                    long[] p = image.positions(b);
                    if (positions == null) {
                        positions = p;
                    } else if (!java.util.Arrays.equals(positions, p)) {
                        return null;   // ragged: tables hold different rows in this block
                    }
                    staged[i++] = b;
                }
            }
        }
        try {
            long bytes = BlockRecords.recordBytes(image.layout(), BlockRecord.Kind.KEYS_AND_VALUES, true,
                    positions.length);
            return bytes <= MAX_COLUMN_RECORD_BYTES ? staged : null;
        } catch (ArithmeticException e) {
            return null;
        }
    }

    /** See {@link KvStore#swapIn}. */
    public static Sequence swapIn(KvStore store, SwappedSequence swapped) {
        if (store == null || swapped == null) {
            throw new KvArgumentException("store and swapped sequence must not be null");
        }
        if (!(swapped instanceof SwappedImage img)) {
            throw new KvArgumentException("only handles returned by Sequence.swapOut can be swapped in, got "
                    + swapped.getClass().getName());
        }
        synchronized (img) {
            if (!img.isOpen()) {
                throw new ClosedException("swapped sequence " + img.sequenceId
                        + " (already swapped in, or closed; its records were removed)");
            }
            if (!store.layout().equals(img.layout)) {
                throw new KvArgumentException("swapped sequence " + img.sequenceId + " has layout " + img.layout
                        + "; this store's is " + store.layout());
            }
            Sequence restored;
            try (BlockStaging staging = RawBlocks.stage(store, img.keyBlocks())) {
                for (int r = 0; r < img.keys.size(); r++) {
                    VerifiedRecord rec = read(img, r);
                    Planned p = img.plan.get(r);
                    int[] staged = p.staged();
                    int at = rec.rowsOffset();   // rows read in place from the tier's bytes, not copied out first
                    for (int i = 0; i < staged.length; i++) {
                        staging.write(staged[i], rec.buffer(), at, rec.rowCount());
                        at += Math.toIntExact(rec.rowCount() * img.layout.rowBytes(p.isKeys(i)));
                    }
                }
                restored = staging.commit(java.util.Collections.singletonList(img.tables)).get(0);
            }
            img.consume();
            return restored;
        }
    }

    /** Reads record {@code b} and checks it is exactly the one written. */
    private static VerifiedRecord read(SwappedImage img, int b) {
        BlockKey key = img.keys.get(b);
        Optional<byte[]> got = img.tier.get(key);
        if (got == null || got.isEmpty()) {
            throw new TierRecordException(TierRecordException.Reason.MISSING, key, "block record " + key.hex()
                    + " (" + (b + 1) + " of " + img.keys.size() + ") of swapped sequence " + img.sequenceId
                    + " is missing from tier " + img.tier.name() + "; recompute the sequence");
        }
        byte[] bytes = got.get();
        VerifiedRecord r = BlockRecords.verify(img.layout, key, bytes, 0, bytes.length);
        Planned p = img.plan.get(b);
        BlockRecords.expect(r, key, p.kind(), p.layer(), p.kvHead(), p.positions());
        if (crcOf(bytes) != img.crcs[b]) {
            throw new TierRecordException(TierRecordException.Reason.UNEXPECTED_CONTENT, key, "block record "
                    + key.hex() + " is intact but holds other rows than the record written at swap-out "
                    + "(CRC32C 0x" + Integer.toHexString(crcOf(bytes)) + ", written 0x"
                    + Integer.toHexString(img.crcs[b]) + ")");
        }
        return r;
    }

    private static int crcOf(byte[] record) {
        return ByteBuffer.wrap(record).order(ByteOrder.LITTLE_ENDIAN).getInt(record.length - BlockRecords.CRC_BYTES);
    }

    /** Removes {@code keys} as one batch ({@link BlockTier#removeAll}: one timeout however many), best effort. */
    static void removeQuietly(BlockTier tier, List<BlockKey> keys) {
        try {
            tier.removeAll(keys);
        } catch (RuntimeException ignored) {
            // best effort: a record left behind is garbage the tier's cap evicts; never in the way of a result
        }
    }
}
