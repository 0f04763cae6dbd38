package io.kvslab.internal.tier;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.internal.table.PayloadValues;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.TierRecordException;
import io.kvslab.tier.TierRecordException.Reason;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.zip.CRC32C;

/**
 * The block-record format, version 1: the one encoding every {@link io.kvslab.tier.BlockTier} stores (disk,
 * Redis). Full specification in docs/tiers.md. All integers little-endian.
 *
 * <pre>
 * [0, 8)     magic "KVSLBLK1"
 * [8, 12)    format version (1)
 * [12, 16)   header bytes (48)
 * [16, 24)   layout fingerprint ({@link #layoutFingerprint})
 * [24]       kind: 0 = K rows, 1 = V rows, 2 = K then V rows
 * [25]       scope: 0 = one (layer, KV head), 1 = every (layer, KV head)
 * [26, 28)   reserved, 0
 * [28, 32)   layer (scope 0) or -1 (scope 1)
 * [32, 36)   KV head (scope 0) or -1 (scope 1)
 * [36, 40)   rows per table, in [1, tokensPerBlock]
 * [40, 48)   total record bytes, this header and the CRC included
 * [48, +8r)  positions, one long per row
 * [.., +p)   raw rows (p = tables x rows x (keyRowBytes and/or valueRowBytes)), see {@link BlockRecord}
 * [end-4, end) CRC32C of every byte before it
 * </pre>
 *
 * <p>{@link #decode} trusts nothing: it checks the length before reading a field, the declared length and the
 * CRC before interpreting any field, the fingerprint against the reader's layout, every header field against its
 * range, positions, and that every element is a finite value of the dtype; sizes are computed in long with
 * overflow checks and compared with the bytes actually present before anything is allocated. Each failure is a
 * {@link TierRecordException} with its {@link Reason}. Stateless and thread-safe.
 */
public final class BlockRecords {
    /** The first 8 bytes of every record. */
    public static final byte[] MAGIC = "KVSLBLK1".getBytes(StandardCharsets.US_ASCII);
    public static final int VERSION = 1;
    public static final int HEADER_BYTES = 48;
    public static final int CRC_BYTES = 4;
    /** Largest record: it must fit one Java array. */
    public static final long MAX_RECORD_BYTES = Integer.MAX_VALUE - 16;

    static final int OFF_VERSION = 8;
    static final int OFF_HEADER_BYTES = 12;
    static final int OFF_FINGERPRINT = 16;
    static final int OFF_KIND = 24;
    static final int OFF_SCOPE = 25;
    static final int OFF_RESERVED = 26;
    static final int OFF_LAYER = 28;
    static final int OFF_KV_HEAD = 32;
    static final int OFF_ROWS = 36;
    static final int OFF_TOTAL_BYTES = 40;

    private static final int SCOPE_ONE = 0;
    private static final int SCOPE_ALL = 1;

    private BlockRecords() {}

    /**
     * A 64-bit fingerprint of what makes rows interpretable: dtype, tokens per block, layers, query heads, KV
     * heads and head dim. The first 8 bytes (little-endian) of the SHA-256 of
     * {@code "kvslab-layout-v1:dtype=F16,tokensPerBlock=32,layers=5,queryHeads=8,kvHeads=4,headDim=8"}. A layout
     * whose K and V types differ names both ({@code dtype=Q8_0/Q4_0}, K then V), so its records are told apart
     * from every uniform layout's without a header change; a uniform layout's fingerprint is what it always was.
     */
    public static long layoutFingerprint(KvLayout layout) {
        if (layout == null) {
            throw new KvArgumentException("layout must not be null");
        }
        String dtype = layout.uniformDtype() ? layout.keyDtype().toString()
                : layout.keyDtype() + "/" + layout.valueDtype();
        String canonical = "kvslab-layout-v1:dtype=" + dtype + ",tokensPerBlock=" + layout.tokensPerBlock()
                + ",layers=" + layout.layers() + ",queryHeads=" + layout.queryHeads() + ",kvHeads=" + layout.kvHeads()
                + ",headDim=" + layout.headDim();
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(canonical.getBytes(StandardCharsets.US_ASCII));
            return ByteBuffer.wrap(d).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    /** Bytes of the raw rows of a record of this kind, scope and row count (exact, overflow-checked). */
    public static long rowsBytes(KvLayout layout, BlockRecord.Kind kind, boolean allTables, int rows) {
        long tables = allTables ? (long) layout.layers() * layout.kvHeads() : 1;
        return Math.multiplyExact(Math.multiplyExact(tables, (long) rows), tableRowBytes(layout, kind));
    }

    /** Bytes of one row of one table in a record of this kind: its K row, its V row, or both. */
    static long tableRowBytes(KvLayout layout, BlockRecord.Kind kind) {
        return switch (kind) {
            case KEYS -> layout.keyRowBytes();
            case VALUES -> layout.valueRowBytes();
            case KEYS_AND_VALUES -> layout.keyRowBytes() + layout.valueRowBytes();
        };
    }

    /** Offset in {@link BlockRecord#rows()} of the K ({@code keys}) or V rows of one table of the record. */
    public static int rowsOffset(KvLayout layout, BlockRecord record, int layer, int kvHead, boolean keys) {
        BlockRecord.Kind kind = record.kind();
        if (kind == BlockRecord.Kind.KEYS && !keys || kind == BlockRecord.Kind.VALUES && keys) {
            throw new KvArgumentException("a " + kind + " record holds no " + (keys ? "K" : "V") + " rows");
        }
        long table;
        if (record.allTables()) {
            checkTable(layout, layer, kvHead);
            table = (long) layer * layout.kvHeads() + kvHead;
        } else if (layer == record.layer() && kvHead == record.kvHead()) {
            table = 0;
        } else {
            throw new KvArgumentException("the record holds layer " + record.layer() + ", KV head "
                    + record.kvHead() + ", not layer " + layer + ", KV head " + kvHead);
        }
        long partOffset = kind == BlockRecord.Kind.KEYS_AND_VALUES && !keys ? layout.keyRowBytes() : 0;
        return Math.toIntExact(record.rowCount() * (table * tableRowBytes(layout, kind) + partOffset));
    }

    /** Total bytes of an encoded record. */
    public static long recordBytes(KvLayout layout, BlockRecord.Kind kind, boolean allTables, int rows) {
        return Math.addExact(Math.addExact(HEADER_BYTES + 8L * rows, rowsBytes(layout, kind, allTables, rows)),
                CRC_BYTES);
    }

    /**
     * Encodes {@code record} for {@code layout}.
     *
     * @throws KvArgumentException if the record does not fit the layout: a null field, a table outside the layout
     *                             (or only one of layer / KV head {@link BlockRecord#ALL}), a row count outside
     *                             {@code [1, tokensPerBlock]}, positions not strictly increasing from {@code >= 0},
     *                             or rows of the wrong length
     * @throws TierRecordException with reason {@code NON_FINITE_VALUE} if a row value is not finite in its type
     *                             ({@link #verify} would refuse the record)
     */
    public static byte[] encode(KvLayout layout, BlockRecord record) {
        if (layout == null || record == null || record.kind() == null || record.positions() == null
                || record.rows() == null) {
            throw new KvArgumentException("layout, record, its kind, positions and rows must not be null");
        }
        boolean all = record.layer() == BlockRecord.ALL && record.kvHead() == BlockRecord.ALL;
        if (!all) {
            checkTable(layout, record.layer(), record.kvHead());
        }
        int rows = record.rowCount();
        if (rows < 1 || rows > layout.tokensPerBlock()) {
            throw new KvArgumentException("a record holds 1 to " + layout.tokensPerBlock() + " rows (one block), got "
                    + rows);
        }
        int bad = firstBadPosition(record.positions());
        if (bad >= 0) {
            throw new KvArgumentException("positions must be >= 0 and strictly increasing; positions[" + bad + "] = "
                    + record.positions()[bad]);
        }
        long rowsBytes = rowsBytes(layout, record.kind(), all, rows);
        if (record.rows().length != rowsBytes) {
            throw new KvArgumentException("a " + record.kind() + " record of " + rows + " rows for "
                    + (all ? "every (layer, KV head)" : "one (layer, KV head)") + " needs " + rowsBytes
                    + " bytes of rows, got " + record.rows().length);
        }
        // A reader refuses a non-finite value (verify), so such a record could never be read back: refuse it while
        // its rows still exist (a swap-out then keeps the sequence in memory)
        String nonFinite = firstNonFinite(layout, record.kind(), rows, record.rows(), 0, record.rows().length);
        if (nonFinite != null) {
            throw reject(Reason.NON_FINITE_VALUE, null, "cannot encode a record whose " + nonFinite);
        }
        long total = recordBytes(layout, record.kind(), all, rows);
        if (total > MAX_RECORD_BYTES) {
            throw new KvArgumentException("the record would be " + total + " bytes; at most " + MAX_RECORD_BYTES
                    + " are allowed");
        }
        byte[] b = new byte[(int) total];
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(0, MAGIC);
        buf.putInt(OFF_VERSION, VERSION);
        buf.putInt(OFF_HEADER_BYTES, HEADER_BYTES);
        buf.putLong(OFF_FINGERPRINT, layoutFingerprint(layout));
        buf.put(OFF_KIND, (byte) record.kind().code());
        buf.put(OFF_SCOPE, (byte) (all ? SCOPE_ALL : SCOPE_ONE));
        buf.putInt(OFF_LAYER, record.layer());
        buf.putInt(OFF_KV_HEAD, record.kvHead());
        buf.putInt(OFF_ROWS, rows);
        buf.putLong(OFF_TOTAL_BYTES, total);
        for (int r = 0; r < rows; r++) {
            buf.putLong(HEADER_BYTES + 8 * r, record.positions()[r]);
        }
        System.arraycopy(record.rows(), 0, b, HEADER_BYTES + 8 * rows, record.rows().length);
        buf.putInt(b.length - CRC_BYTES, crc(b, 0, b.length - CRC_BYTES));
        return b;
    }

    /**
     * Decodes and verifies a record read from a tier against the reader's layout; the rows are copied out of
     * {@code bytes} ({@link #verify} reads them in place).
     *
     * @param key the key it was read under, for messages and {@link TierRecordException#key()}; may be null
     * @throws TierRecordException naming the failed check; nothing of a rejected record is returned
     */
    public static BlockRecord decode(KvLayout layout, BlockKey key, byte[] bytes) {
        return verify(layout, key, bytes, 0, bytes == null ? 0 : bytes.length).toRecord();
    }

    /**
     * Verifies the record in {@code bytes[offset, offset + length)} against the reader's layout, every check of
     * {@link #decode}, without copying it: the result is a view of its rows inside {@code bytes}.
     *
     * @param key the key it was read under, for messages and {@link TierRecordException#key()}; may be null
     * @throws TierRecordException naming the failed check; nothing of a rejected record is returned
     * @throws KvArgumentException if the layout is null or the range lies outside {@code bytes}
     */
    public static VerifiedRecord verify(KvLayout layout, BlockKey key, byte[] bytes, int offset, int length) {
        if (layout == null) {
            throw new KvArgumentException("layout must not be null");
        }
        String what = key == null ? "block record" : "block record " + key.hex();
        if (bytes == null) {
            throw new TierRecordException(Reason.MISSING, key, what + " is missing");
        }
        if (offset < 0 || length < 0 || offset > bytes.length - length) {
            throw new KvArgumentException("the record range [" + offset + ", +" + length + ") lies outside the "
                    + bytes.length + " bytes given");
        }
        if (length < HEADER_BYTES + CRC_BYTES) {
            throw reject(Reason.TRUNCATED, key, what + " is " + length + " bytes, shorter than the "
                    + (HEADER_BYTES + CRC_BYTES) + " bytes of a header and checksum");
        }
        // every index below is relative to the record's first byte
        ByteBuffer buf = ByteBuffer.wrap(bytes, offset, length).slice().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < MAGIC.length; i++) {
            if (bytes[offset + i] != MAGIC[i]) {
                throw reject(Reason.BAD_MAGIC, key, what + " does not start with the record magic \"KVSLBLK1\"");
            }
        }
        int version = buf.getInt(OFF_VERSION);
        if (version != VERSION) {
            throw reject(Reason.UNSUPPORTED_VERSION, key, what + " has format version " + version
                    + "; this build reads version " + VERSION);
        }
        long declared = buf.getLong(OFF_TOTAL_BYTES);
        if (declared != length) {
            throw reject(Reason.LENGTH_MISMATCH, key, what + " is " + length + " bytes but its header declares "
                    + declared + " (cut short, or trailing bytes)");
        }
        int stored = buf.getInt(length - CRC_BYTES);
        int computed = crc(bytes, offset, length - CRC_BYTES);
        if (stored != computed) {
            throw reject(Reason.CHECKSUM_MISMATCH, key, what + ": CRC32C mismatch (stored 0x"
                    + Integer.toHexString(stored) + ", computed 0x" + Integer.toHexString(computed) + ")");
        }
        long fingerprint = buf.getLong(OFF_FINGERPRINT);
        long expected = layoutFingerprint(layout);
        if (fingerprint != expected) {
            throw reject(Reason.LAYOUT_MISMATCH, key, what + " was written for another layout (fingerprint 0x"
                    + Long.toHexString(fingerprint) + ", this store's " + layout + " is 0x"
                    + Long.toHexString(expected) + ")");
        }
        int headerBytes = buf.getInt(OFF_HEADER_BYTES);
        if (headerBytes != HEADER_BYTES) {
            throw reject(Reason.BAD_HEADER, key, what + ": header size " + headerBytes + ", version " + VERSION
                    + " has " + HEADER_BYTES);
        }
        BlockRecord.Kind kind = BlockRecord.Kind.ofCode(buf.get(OFF_KIND));
        if (kind == null) {
            throw reject(Reason.BAD_HEADER, key, what + ": kind " + buf.get(OFF_KIND)
                    + ", allowed are 0 (K), 1 (V), 2 (K and V)");
        }
        int scope = buf.get(OFF_SCOPE);
        int layer = buf.getInt(OFF_LAYER);
        int kvHead = buf.getInt(OFF_KV_HEAD);
        if (buf.getShort(OFF_RESERVED) != 0) {
            throw reject(Reason.BAD_HEADER, key, what + ": reserved header bytes must be 0");
        }
        boolean all;
        if (scope == SCOPE_ALL) {
            all = true;
            if (layer != BlockRecord.ALL || kvHead != BlockRecord.ALL) {
                throw reject(Reason.BAD_HEADER, key, what + ": a record of every (layer, KV head) stores layer and "
                        + "KV head -1, got " + layer + " and " + kvHead);
            }
        } else if (scope == SCOPE_ONE) {
            all = false;
            if (layer < 0 || layer >= layout.layers() || kvHead < 0 || kvHead >= layout.kvHeads()) {
                throw reject(Reason.BAD_HEADER, key, what + ": layer " + layer + ", KV head " + kvHead
                        + " outside the layout's [0, " + layout.layers() + ") x [0, " + layout.kvHeads() + ")");
            }
        } else {
            throw reject(Reason.BAD_HEADER, key, what + ": scope " + scope
                    + ", allowed are 0 (one table) and 1 (every table)");
        }
        int rows = buf.getInt(OFF_ROWS);
        if (rows < 1 || rows > layout.tokensPerBlock()) {
            throw reject(Reason.BAD_HEADER, key, what + ": " + rows + " rows, allowed are 1 to "
                    + layout.tokensPerBlock() + " (one block)");
        }
        long need = recordBytes(layout, kind, all, rows);   // bounded: rows <= tokensPerBlock, tables <= 2^20
        if (need != length) {
            throw reject(Reason.BAD_HEADER, key, what + ": a " + kind + " record of " + rows + " rows is " + need
                    + " bytes, the record is " + length);
        }
        long[] positions = new long[rows];
        for (int r = 0; r < rows; r++) {
            positions[r] = buf.getLong(HEADER_BYTES + 8 * r);
        }
        int bad = firstBadPosition(positions);
        if (bad >= 0) {
            throw reject(Reason.BAD_POSITIONS, key, what + ": positions must be >= 0 and strictly increasing; "
                    + "positions[" + bad + "] = " + positions[bad]);
        }
        int rowsOff = offset + HEADER_BYTES + 8 * rows;
        int rowsLen = length - CRC_BYTES - HEADER_BYTES - 8 * rows;
        String nonFinite = firstNonFinite(layout, kind, rows, bytes, rowsOff, rowsLen);
        if (nonFinite != null) {
            throw reject(Reason.NON_FINITE_VALUE, key, what + ": " + nonFinite);
        }
        return new VerifiedRecord(kind, layer, kvHead, positions, bytes, rowsOff, rowsLen);
    }

    /**
     * The first value of {@code bytes[rowsOff, rowsOff + rowsLen)} (a record's rows) that is not finite in its
     * part's type, described, or null. Parts in order: per table, its K rows then (or only) its V rows.
     */
    private static String firstNonFinite(KvLayout layout, BlockRecord.Kind kind, int rows, byte[] bytes, int rowsOff,
                                         int rowsLen) {
        boolean[] parts = switch (kind) {
            case KEYS -> new boolean[] {true};
            case VALUES -> new boolean[] {false};
            case KEYS_AND_VALUES -> new boolean[] {true, false};
        };
        int partOff = rowsOff;
        int seen = 0;
        while (partOff < rowsOff + rowsLen) {
            boolean keys = parts[seen++ % parts.length];
            DType dtype = layout.dtype(keys);
            int partLen = Math.toIntExact(rows * layout.rowBytes(keys));
            int element = PayloadValues.firstNonFinite(bytes, partOff, partLen, dtype, layout.headDim());
            if (element >= 0) {
                return "element " + element + " of the " + (keys ? "K" : "V") + " rows at byte " + (partOff - rowsOff)
                        + " is " + PayloadValues.describe(bytes, partOff, element, dtype, layout.headDim())
                        + "; stored rows must be finite " + dtype + " values, as append requires";
            }
            partOff += partLen;
        }
        return null;
    }

    /**
     * Checks that a decoded record is the one the caller wrote under its key: kind, table and positions.
     *
     * @throws TierRecordException with {@link Reason#UNEXPECTED_CONTENT} otherwise
     */
    public static void expect(BlockRecord record, BlockKey key, BlockRecord.Kind kind, int layer, int kvHead,
                              long[] positions) {
        String what = key == null ? "block record" : "block record " + key.hex();
        if (record.kind() != kind || record.layer() != layer || record.kvHead() != kvHead) {
            throw reject(Reason.UNEXPECTED_CONTENT, key, what + " holds " + record.kind() + " rows of "
                    + scope(record.layer(), record.kvHead()) + ", expected " + kind + " rows of "
                    + scope(layer, kvHead));
        }
        if (!java.util.Arrays.equals(record.positions(), positions)) {
            throw reject(Reason.UNEXPECTED_CONTENT, key, what + " holds " + record.rowCount() + " rows at other "
                    + "positions than the " + (positions == null ? 0 : positions.length) + " expected");
        }
    }

    /**
     * {@link #expect(BlockRecord, BlockKey, BlockRecord.Kind, int, int, long[])} for a record verified in place.
     *
     * @throws TierRecordException with {@link Reason#UNEXPECTED_CONTENT} otherwise
     */
    public static void expect(VerifiedRecord record, BlockKey key, BlockRecord.Kind kind, int layer, int kvHead,
                              long[] positions) {
        expect(new BlockRecord(record.kind(), record.layer(), record.kvHead(), record.positions(), null), key, kind,
                layer, kvHead, positions);
    }

    private static String scope(int layer, int kvHead) {
        return layer == BlockRecord.ALL ? "every (layer, KV head)" : "layer " + layer + ", KV head " + kvHead;
    }

    private static void checkTable(KvLayout layout, int layer, int kvHead) {
        if (layer < 0 || layer >= layout.layers() || kvHead < 0 || kvHead >= layout.kvHeads()) {
            throw new KvArgumentException("layer and KV head must be in [0, " + layout.layers() + ") x [0, "
                    + layout.kvHeads() + "), or both BlockRecord.ALL; got " + layer + ", " + kvHead);
        }
    }

    private static int firstBadPosition(long[] p) {
        for (int r = 0; r < p.length; r++) {
            if (p[r] < 0 || (r > 0 && p[r] <= p[r - 1])) {
                return r;
            }
        }
        return -1;
    }

    private static TierRecordException reject(Reason reason, BlockKey key, String message) {
        return new TierRecordException(reason, key, message);
    }

    private static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
