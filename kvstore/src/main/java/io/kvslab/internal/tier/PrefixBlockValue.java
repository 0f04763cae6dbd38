package io.kvslab.internal.tier;

import io.kvslab.KvLayout;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.TierRecordException;
import io.kvslab.tier.TierRecordException.Reason;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * The value a shared prefix block is stored as: a small envelope naming what the block is the KV of, around one
 * ordinary block record (format v1, {@link BlockRecords}) holding K then V rows of every (layer, KV head).
 *
 * <pre>
 * [0, 8)       magic "KVSLPFX1"
 * [8, 24)      the block's key (high, low)
 * [24, 40)     the parent block's key (0, 0 for the first block)
 * [40, 44)     tokens in the block (the layout's tokens per block)
 * [44, 44+4n)  the tokens
 * [.., +4)     CRC32C of every envelope byte before it
 * [.., end)    the block record (its own header, positions and CRC32C)
 * </pre>
 *
 * <p>The key is a hash and could collide; the envelope lets the reader compare the block's actual tokens and
 * parent with the prompt's, so a collision (or a value stored under the wrong key) is a miss, never a wrong block.
 */
public final class PrefixBlockValue {
    static final byte[] MAGIC = "KVSLPFX1".getBytes(StandardCharsets.US_ASCII);
    private static final int FIXED = 44;

    private PrefixBlockValue() {}

    /** Envelope bytes followed by {@code record}. */
    public static byte[] encode(BlockKey key, BlockKey parent, int[] tokens, int from, int n, byte[] record) {
        int envelope = FIXED + 4 * n + 4;
        byte[] b = new byte[Math.addExact(envelope, record.length)];
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(0, MAGIC);
        buf.putLong(8, key.high()).putLong(16, key.low());
        buf.putLong(24, parent.high()).putLong(32, parent.low());
        buf.putInt(40, n);
        for (int i = 0; i < n; i++) {
            buf.putInt(FIXED + 4 * i, tokens[from + i]);
        }
        buf.putInt(envelope - 4, crc(b, envelope - 4));
        System.arraycopy(record, 0, b, envelope, record.length);
        return b;
    }

    /**
     * Checks the envelope against what the reader expects (key, parent, the prompt's tokens) and decodes the
     * record inside against the reader's layout, expecting K and V rows of every table at positions
     * {@code [firstPosition, firstPosition + tokensPerBlock)}. Nothing is copied: the result is a view of the rows
     * inside {@code value}.
     *
     * @throws TierRecordException naming the failed check
     */
    public static VerifiedRecord decode(KvLayout layout, BlockKey key, BlockKey parent, int[] tokens, int from,
                                     long firstPosition, byte[] value) {
        int n = layout.tokensPerBlock();
        int envelope = FIXED + 4 * n + 4;
        String what = "prefix block " + key.hex();
        if (value == null) {
            throw new TierRecordException(Reason.MISSING, key, what + " is missing");
        }
        if (value.length < envelope) {
            throw new TierRecordException(Reason.TRUNCATED, key, what + " is " + value.length
                    + " bytes, shorter than its " + envelope + "-byte envelope");
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (value[i] != MAGIC[i]) {
                throw new TierRecordException(Reason.BAD_MAGIC, key, what + " does not start with \"KVSLPFX1\"");
            }
        }
        ByteBuffer buf = ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.getInt(40) != n) {
            throw new TierRecordException(Reason.LAYOUT_MISMATCH, key, what + " holds " + buf.getInt(40)
                    + " tokens; this store's blocks hold " + n);
        }
        if (buf.getInt(envelope - 4) != crc(value, envelope - 4)) {
            throw new TierRecordException(Reason.CHECKSUM_MISMATCH, key, what + ": envelope CRC32C mismatch");
        }
        if (buf.getLong(8) != key.high() || buf.getLong(16) != key.low()
                || buf.getLong(24) != parent.high() || buf.getLong(32) != parent.low()) {
            throw new TierRecordException(Reason.UNEXPECTED_CONTENT, key, what + " names another block or parent");
        }
        for (int i = 0; i < n; i++) {
            if (buf.getInt(FIXED + 4 * i) != tokens[from + i]) {
                throw new TierRecordException(Reason.UNEXPECTED_CONTENT, key, what + " holds other tokens than the "
                        + "prompt (token " + i + " of the block differs): a key collision, never used");
            }
        }
        // the record is verified where it lies, after the envelope: its rows are not copied
        VerifiedRecord r = BlockRecords.verify(layout, key, value, envelope, value.length - envelope);
        long[] positions = new long[n];
        for (int i = 0; i < n; i++) {
            positions[i] = firstPosition + i;
        }
        BlockRecords.expect(r, key, BlockRecord.Kind.KEYS_AND_VALUES, BlockRecord.ALL, BlockRecord.ALL, positions);
        return r;
    }

    private static int crc(byte[] b, int len) {
        CRC32C c = new CRC32C();
        c.update(b, 0, len);
        return (int) c.getValue();
    }
}
