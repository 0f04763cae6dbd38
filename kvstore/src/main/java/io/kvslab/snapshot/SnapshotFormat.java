package io.kvslab.snapshot;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * Snapshot file format, versions 2 and 3 (full specification: docs/snapshots.md). All integers little-endian.
 * Version 3 has version 2's layout; it is written for stores whose K and V rows have different types (the V dtype
 * and V row bytes fields differ from the K ones), so a build that reads only version 2 refuses such a file by its
 * version rather than misreading it. Stores with one type still write version 2.
 * Version 2 adds to version 1's header the bytes of one stored row and the V rows' dtype code and row bytes
 * (quantised dtypes store groups with scales, so a row is no longer headDim x bytes per element); everything
 * else is unchanged. Readers accept versions 1 and 2; version 1 files have zeros in those fields and their row
 * bytes are derived from the dtype.
 *
 * <pre>
 * [0, 128)                 header (fixed size; CRC32C of bytes [0, 124) at 124)
 * [tablesOffset, +bytes)   table section: per sequence its saved id, then per (layer, KV head): rows, block count,
 *                          positions, K block indices, V block indices; CRC32C of the section at its end
 * [dataOffset, +bytes)     block payloads back to back: the stored rows of each distinct block, raw
 * [directoryOffset, +bytes) block directory: per block (offset, rows, kind, references, CRC32C of the payload);
 *                          CRC32C of the directory at its end
 * </pre>
 *
 * Table slots name blocks by directory index; slots naming the same index share one block (forks, prefix-cache
 * blocks, and cross-layer key sharing): the directory is the aliasing table. The header is written last, so a
 * file cut short while writing has no valid header.
 */
final class SnapshotFormat {
    static final byte[] MAGIC = "KVSLSNAP".getBytes(StandardCharsets.US_ASCII);
    /** The newest version this build writes and reads. */
    static final int VERSION = 3;
    /** The version written for stores whose K and V rows have the same type. */
    static final int UNIFORM_VERSION = 2;
    /** The oldest version this build reads. */
    static final int MIN_VERSION = 1;
    static final int HEADER_BYTES = 128;
    static final int CRC_BYTES = 4;
    static final int DIRECTORY_ENTRY_BYTES = 24;
    static final byte KIND_KEY = 0;
    static final byte KIND_VALUE = 1;

    // Bounds a reader enforces before it allocates anything (docs/snapshots.md, "Bounds"). Counts are also
    // bounded by the file's length: a sequence needs at least 8 table bytes, a block 24 directory bytes.
    static final int MAX_LAYERS = 1 << 16;
    static final int MAX_HEADS = 1 << 16;
    static final int MAX_HEAD_DIM = 1 << 16;
    static final int MAX_TOKENS_PER_BLOCK = 1 << 16;
    /** layers x kvHeads: the (layer, KV head) tables of one sequence. */
    static final long MAX_TABLES_PER_SEQUENCE = 1L << 24;
    /** tokensPerBlock x row bytes: one block's payload is read into one heap array. */
    static final long MAX_BLOCK_BYTES = 1L << 30;
    static final int MAX_SEQUENCES = Integer.MAX_VALUE;
    static final int MAX_BLOCKS = Integer.MAX_VALUE;

    // Header field offsets. MAGIC and VERSION stay where they are in every future version.
    static final int OFF_VERSION = 8;
    static final int OFF_HEADER_BYTES = 12;
    static final int OFF_LAYERS = 16;
    static final int OFF_QUERY_HEADS = 20;
    static final int OFF_KV_HEADS = 24;
    static final int OFF_HEAD_DIM = 28;
    static final int OFF_DTYPE = 32;
    static final int OFF_TOKENS_PER_BLOCK = 36;
    static final int OFF_SEQUENCES = 40;
    static final int OFF_BLOCKS = 44;
    static final int OFF_TABLES_OFFSET = 48;
    static final int OFF_TABLES_BYTES = 56;
    static final int OFF_DATA_OFFSET = 64;
    static final int OFF_DATA_BYTES = 72;
    static final int OFF_DIRECTORY_OFFSET = 80;
    static final int OFF_DIRECTORY_BYTES = 88;
    static final int OFF_TOTAL_BYTES = 96;
    static final int OFF_CREATED_AT = 104;
    /** Version 2: bytes of one stored K row ({@code KvLayout.rowBytes()}). */
    static final int OFF_ROW_BYTES = 112;
    /** Version 2: dtype code of V rows and their row bytes (equal to the K ones in version 2, may differ in 3). */
    static final int OFF_VALUE_DTYPE = 116;
    static final int OFF_VALUE_ROW_BYTES = 120;
    static final int OFF_HEADER_CRC = 124;

    private SnapshotFormat() {}

    /** The header fields, as stored. */
    record Header(int version, int headerBytes, int layers, int queryHeads, int kvHeads, int headDim, int dtypeCode,
                  int tokensPerBlock, int sequences, int blocks, long tablesOffset, long tablesBytes,
                  long dataOffset, long dataBytes, long directoryOffset, long directoryBytes, long totalBytes,
                  long createdAtMillis, int rowBytes, int valueDtypeCode, int valueRowBytes) {

        byte[] encode() {
            byte[] b = new byte[HEADER_BYTES];
            ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            buf.put(0, MAGIC);
            buf.putInt(OFF_VERSION, version);
            buf.putInt(OFF_HEADER_BYTES, headerBytes);
            buf.putInt(OFF_LAYERS, layers);
            buf.putInt(OFF_QUERY_HEADS, queryHeads);
            buf.putInt(OFF_KV_HEADS, kvHeads);
            buf.putInt(OFF_HEAD_DIM, headDim);
            buf.putInt(OFF_DTYPE, dtypeCode);
            buf.putInt(OFF_TOKENS_PER_BLOCK, tokensPerBlock);
            buf.putInt(OFF_SEQUENCES, sequences);
            buf.putInt(OFF_BLOCKS, blocks);
            buf.putLong(OFF_TABLES_OFFSET, tablesOffset);
            buf.putLong(OFF_TABLES_BYTES, tablesBytes);
            buf.putLong(OFF_DATA_OFFSET, dataOffset);
            buf.putLong(OFF_DATA_BYTES, dataBytes);
            buf.putLong(OFF_DIRECTORY_OFFSET, directoryOffset);
            buf.putLong(OFF_DIRECTORY_BYTES, directoryBytes);
            buf.putLong(OFF_TOTAL_BYTES, totalBytes);
            buf.putLong(OFF_CREATED_AT, createdAtMillis);
            buf.putInt(OFF_ROW_BYTES, rowBytes);
            buf.putInt(OFF_VALUE_DTYPE, valueDtypeCode);
            buf.putInt(OFF_VALUE_ROW_BYTES, valueRowBytes);
            buf.putInt(OFF_HEADER_CRC, crc(b, 0, OFF_HEADER_CRC));
            return b;
        }

        static Header decode(byte[] b) {
            ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            return new Header(buf.getInt(OFF_VERSION), buf.getInt(OFF_HEADER_BYTES), buf.getInt(OFF_LAYERS),
                    buf.getInt(OFF_QUERY_HEADS), buf.getInt(OFF_KV_HEADS), buf.getInt(OFF_HEAD_DIM),
                    buf.getInt(OFF_DTYPE), buf.getInt(OFF_TOKENS_PER_BLOCK), buf.getInt(OFF_SEQUENCES),
                    buf.getInt(OFF_BLOCKS), buf.getLong(OFF_TABLES_OFFSET), buf.getLong(OFF_TABLES_BYTES),
                    buf.getLong(OFF_DATA_OFFSET), buf.getLong(OFF_DATA_BYTES), buf.getLong(OFF_DIRECTORY_OFFSET),
                    buf.getLong(OFF_DIRECTORY_BYTES), buf.getLong(OFF_TOTAL_BYTES), buf.getLong(OFF_CREATED_AT),
                    buf.getInt(OFF_ROW_BYTES), buf.getInt(OFF_VALUE_DTYPE), buf.getInt(OFF_VALUE_ROW_BYTES));
        }
    }

    static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
