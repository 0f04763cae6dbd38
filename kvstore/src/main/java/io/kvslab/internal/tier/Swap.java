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
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.SwappedSequence;
import io.kvslab.tier.TierRecordException;
import io.kvslab.tier.TierWriteException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Swapping a sequence out to a {@link BlockTier} and back (docs/tiers.md, "Swap"). One record per distinct block
 * ({@link SwapImage}); keys are {@code (random swap id, record index)}, so swaps of different sequences, stores
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

    private static SwappedImage write(long sequenceId, SwapImage image, BlockTier tier, long swapId) {
        KvLayout layout = image.layout();
        int n = image.blocks();
        List<BlockKey> keys = new ArrayList<>(n);
        int[] crcs = new int[n];
        BlockRecord.Kind[] kinds = new BlockRecord.Kind[n];
        int[] layers = new int[n];
        int[] kvHeads = new int[n];
        long[][] positions = new long[n][];
        long bytes = 0;
        try {
            for (int b = 0; b < n; b++) {
                positions[b] = image.positions(b);
                kinds[b] = image.isKeys(b) ? BlockRecord.Kind.KEYS : BlockRecord.Kind.VALUES;
                layers[b] = image.layer(b);
                kvHeads[b] = image.kvHead(b);
                byte[] rows = new byte[Math.toIntExact(positions[b].length * layout.rowBytes())];
                image.read(b, rows);
                byte[] record = BlockRecords.encode(layout,
                        new BlockRecord(kinds[b], layers[b], kvHeads[b], positions[b], rows));
                BlockKey key = new BlockKey(swapId, b);
                keys.add(key);   // before the put: a failed put may leave a partial value to remove
                if (!tier.put(key, record)) {
                    throw new TierWriteException(tier.name(), "tier " + tier.name() + " declined record " + (b + 1)
                            + " of " + n + " (" + record.length + " bytes) of sequence " + sequenceId
                            + "; the sequence stays in memory and the records written are removed");
                }
                crcs[b] = crcOf(record);
                bytes += record.length;
            }
        } catch (RuntimeException e) {
            for (BlockKey k : keys) {
                removeQuietly(tier, k);
            }
            throw e;
        }
        return new SwappedImage(sequenceId, layout, tier, image.tables(), keys, crcs, kinds, layers, kvHeads,
                positions, bytes);
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
            try (BlockStaging staging = RawBlocks.stage(store, img.keys.size())) {
                for (int b = 0; b < img.keys.size(); b++) {
                    BlockRecord r = read(img, b);
                    staging.write(b, r.rows(), 0, r.rowCount());
                }
                restored = staging.commit(java.util.Collections.singletonList(img.tables)).get(0);
            }
            img.consume();
            return restored;
        }
    }

    /** Reads record {@code b} and checks it is exactly the one written. */
    private static BlockRecord read(SwappedImage img, int b) {
        BlockKey key = img.keys.get(b);
        Optional<byte[]> got = img.tier.get(key);
        if (got == null || got.isEmpty()) {
            throw new TierRecordException(TierRecordException.Reason.MISSING, key, "block record " + key.hex()
                    + " (" + (b + 1) + " of " + img.keys.size() + ") of swapped sequence " + img.sequenceId
                    + " is missing from tier " + img.tier.name() + "; recompute the sequence");
        }
        byte[] bytes = got.get();
        BlockRecord r = BlockRecords.decode(img.layout, key, bytes);
        BlockRecords.expect(r, key, img.kinds[b], img.layers[b], img.kvHeads[b], img.positions[b]);
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

    static void removeQuietly(BlockTier tier, BlockKey key) {
        try {
            tier.remove(key);
        } catch (RuntimeException ignored) {
            // best effort: a record left behind is garbage the tier's cap evicts; never in the way of a result
        }
    }
}
