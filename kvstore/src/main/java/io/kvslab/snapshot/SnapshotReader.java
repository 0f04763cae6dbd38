package io.kvslab.snapshot;

import io.kvslab.KvSlabException;
import io.kvslab.internal.table.BlockStaging;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import io.kvslab.internal.table.PayloadValues;
import io.kvslab.internal.table.TableImage;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Reads and verifies a snapshot file with positional reads ({@link SnapshotInput}; no memory map, so a file
 * truncated while it is read is a typed error, not a fault). {@link #open} checks the header, bounding every
 * count and size by the file's length and by {@link SnapshotFormat}'s maxima before anything is allocated;
 * {@link #verify} checks every checksum, the whole structure and every payload value (finite, as
 * {@code append} requires); the restore methods then stage all blocks (re-checking each block's CRC and values
 * as it is copied: the file may have changed since) and commit them in one step, so a bad file restores nothing.
 */
final class SnapshotReader implements AutoCloseable {
    private static final int CHUNK = 64 * 1024;

    private final String file;
    private final SnapshotInput in;
    private final long size;
    private final SnapshotFormat.Header header;
    private final KvLayout layout;

    // Filled by verify().
    private boolean verified;
    private long[] ids;
    private TableImage[][][] images;
    private long[] blockOffsets;
    private int[] blockRows;
    private int[] blockCrcs;
    private byte[] kindsForTables;
    private int[] refsForTables;
    /** Per block, the first table slot naming it, for messages ("sequence 3, layer 1, KV head 0, K block 2"). */
    private String[] firstUse;
    /** Bytes of the largest block payload: the read buffer's size (bounded by the data section). */
    private int maxPayload;
    private long rows;
    private int shared;

    private SnapshotReader(String file, SnapshotInput in, long size, SnapshotFormat.Header header, KvLayout layout) {
        this.file = file;
        this.in = in;
        this.size = size;
        this.header = header;
        this.layout = layout;
    }

    /** Opens a snapshot and checks its header (magic, version, checksum, size, section bounds, layout fields). */
    static SnapshotReader open(Path path) {
        if (path == null) {
            throw SnapshotException.unsuitable("snapshot path must not be null");
        }
        SnapshotInput in = SnapshotInput.open(path);
        try {
            String file = in.file();
            long size = in.size();
            if (size < SnapshotFormat.HEADER_BYTES) {
                throw SnapshotException.corrupt("snapshot " + file + " is truncated: it has " + size
                        + " bytes, the header alone needs " + SnapshotFormat.HEADER_BYTES);
            }
            byte[] head = new byte[SnapshotFormat.HEADER_BYTES];
            in.readFully(0, head, head.length);
            SnapshotFormat.Header h = checkHeader(file, head, size);
            return new SnapshotReader(file, in, size, h, layoutOf(file, h));
        } catch (RuntimeException e) {
            in.close();
            throw e;
        }
    }

    KvLayout layout() {
        return layout;
    }

    /** Throws unless the snapshot's layout equals the store's. */
    void checkLayout(KvStore store) {
        if (!layout.equals(store.layout())) {
            throw SnapshotException.layoutMismatch(file, layout, store.layout());
        }
    }

    /** Verifies section checksums, the directory, the tables and every block checksum. Idempotent. */
    SnapshotInfo verify() {
        if (!verified) {
            checkSectionCrc("table section", header.tablesOffset(), header.tablesBytes());
            checkSectionCrc("block directory", header.directoryOffset(), header.directoryBytes());
            readDirectory();
            readTables();
            byte[] buffer = new byte[maxPayload];
            for (int b = 0; b < blockRows.length; b++) {
                readBlock(b, buffer);
            }
            verified = true;
        }
        List<Long> idList = new ArrayList<>(ids.length);
        for (long id : ids) {
            idList.add(id);
        }
        return new SnapshotInfo(header.version(), layout, idList, rows, blockRows.length, shared, size,
                header.createdAtMillis());
    }

    /** Restores every sequence as a new sequence of {@code store}: all of them, or none. */
    List<RestoredSequence> restoreAll(KvStore store) {
        checkLayout(store);
        verify();
        try (BlockStaging staging = stage(store)) {
            List<Sequence> created = staging.commit(Arrays.asList(images));
            List<RestoredSequence> out = new ArrayList<>(created.size());
            for (int i = 0; i < created.size(); i++) {
                out.add(new RestoredSequence(ids[i], created.get(i)));
            }
            return out;
        }
    }

    /** Replaces the contents of {@code target} with the file's only sequence. */
    void restoreInto(Sequence target) {
        checkLayout(target.store());
        verify();
        if (ids.length != 1) {
            throw SnapshotException.unsuitable("snapshot " + file + " holds " + ids.length + " sequences; restoring into "
                    + "one sequence needs a snapshot of exactly one (use restoreAll)");
        }
        try (BlockStaging staging = stage(target.store())) {
            staging.commitInto(target, images[0]);
        }
    }

    int sequenceCount() {
        return header.sequences();
    }

    @Override
    public void close() {
        in.close();
    }

    // ---------------------------------------------------------------- header

    private static SnapshotFormat.Header checkHeader(String file, byte[] head, long size) {
        if (!Arrays.equals(head, 0, SnapshotFormat.MAGIC.length, SnapshotFormat.MAGIC, 0,
                SnapshotFormat.MAGIC.length)) {
            throw SnapshotException.corrupt("snapshot " + file + " is not a KVSlab snapshot: it does not start "
                    + "with the magic \"KVSLSNAP\" (an incomplete save has a zeroed header)");
        }
        SnapshotFormat.Header h = SnapshotFormat.Header.decode(head);
        if (h.version() < SnapshotFormat.MIN_VERSION || h.version() > SnapshotFormat.VERSION) {
            throw SnapshotException.unsupportedVersion(file, h.version());
        }
        int stored = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(SnapshotFormat.OFF_HEADER_CRC);
        int actual = SnapshotFormat.crc(head, 0, SnapshotFormat.OFF_HEADER_CRC);
        if (stored != actual) {
            throw SnapshotException.corrupt("snapshot " + file + ": header checksum mismatch (stored 0x"
                    + Integer.toHexString(stored) + ", computed 0x" + Integer.toHexString(actual) + ")");
        }
        if (h.headerBytes() != SnapshotFormat.HEADER_BYTES) {
            throw corrupt(file, "header size is " + h.headerBytes() + ", version " + h.version() + " has "
                    + SnapshotFormat.HEADER_BYTES);
        }
        if (h.totalBytes() != size) {
            throw SnapshotException.corrupt("snapshot " + file + (size < h.totalBytes()
                    ? " is truncated: the header says " + h.totalBytes() + " bytes, the file has " + size
                    : " has " + (size - h.totalBytes()) + " trailing bytes after its " + h.totalBytes()
                    + " bytes of content"));
        }
        // Section bounds, field by field, each against the file's length (no sum can overflow: every term is
        // first bounded by the size).
        long tablesEnd = size - SnapshotFormat.CRC_BYTES;
        field(file, "tablesOffset", h.tablesOffset(), SnapshotFormat.HEADER_BYTES, SnapshotFormat.HEADER_BYTES);
        field(file, "tablesBytes", h.tablesBytes(), SnapshotFormat.CRC_BYTES, tablesEnd - h.tablesOffset());
        long dataOffset = h.tablesOffset() + h.tablesBytes();
        field(file, "dataOffset", h.dataOffset(), dataOffset, dataOffset);
        field(file, "dataBytes", h.dataBytes(), 0, tablesEnd - dataOffset);
        long directoryOffset = dataOffset + h.dataBytes();
        field(file, "directoryOffset", h.directoryOffset(), directoryOffset, directoryOffset);
        long directoryBytes = size - directoryOffset;
        field(file, "directoryBytes", h.directoryBytes(), directoryBytes, directoryBytes);
        long maxBlocks = Math.min(SnapshotFormat.MAX_BLOCKS,
                (directoryBytes - SnapshotFormat.CRC_BYTES) / SnapshotFormat.DIRECTORY_ENTRY_BYTES);
        field(file, "block count", h.blocks(), 0, maxBlocks);
        if ((long) SnapshotFormat.DIRECTORY_ENTRY_BYTES * h.blocks() + SnapshotFormat.CRC_BYTES != directoryBytes) {
            throw corrupt(file, "the block directory has " + directoryBytes + " bytes, " + h.blocks() + " blocks need "
                    + ((long) SnapshotFormat.DIRECTORY_ENTRY_BYTES * h.blocks() + SnapshotFormat.CRC_BYTES));
        }
        // Each sequence's table holds at least its id: 8 bytes.
        long maxSequences = Math.min(SnapshotFormat.MAX_SEQUENCES, (h.tablesBytes() - SnapshotFormat.CRC_BYTES) / 8);
        field(file, "sequence count", h.sequences(), 0, maxSequences);
        return h;
    }

    /** Throws unless {@code min <= value <= max}, naming the header field and the allowed range. */
    private static void field(String file, String name, long value, long min, long max) {
        if (value < min || value > max) {
            throw corrupt(file, "section bounds are inconsistent: header field " + name + " is " + value + ", allowed "
                    + (min == max ? "exactly " + min : "[" + min + ", " + max + "]") + " for this "
                    + "file's length and the sections before it");
        }
    }

    private static KvLayout layoutOf(String file, SnapshotFormat.Header h) {
        DType dtype = DType.ofCode(h.dtypeCode());
        if (dtype == null || (h.version() == 1 && dtype.isQuantized())) {
            throw corrupt(file, "unknown dtype code " + h.dtypeCode() + (h.version() == 1
                    ? " (version 1: 0 = F32, 1 = F16, 2 = BF16)" : " (0 = F32, 1 = F16, 2 = BF16, 3 = Q8_0, 4 = Q4_0)"));
        }
        layoutField(file, "layers", h.layers(), SnapshotFormat.MAX_LAYERS);
        layoutField(file, "queryHeads", h.queryHeads(), SnapshotFormat.MAX_HEADS);
        layoutField(file, "kvHeads", h.kvHeads(), SnapshotFormat.MAX_HEADS);
        layoutField(file, "headDim", h.headDim(), SnapshotFormat.MAX_HEAD_DIM);
        layoutField(file, "tokensPerBlock", h.tokensPerBlock(), SnapshotFormat.MAX_TOKENS_PER_BLOCK);
        // Products in long: each factor is at most 2^16, so none overflows.
        long tables = (long) h.layers() * h.kvHeads();
        if (tables > SnapshotFormat.MAX_TABLES_PER_SEQUENCE) {
            throw corrupt(file, "layers x kvHeads = " + h.layers() + " x " + h.kvHeads() + " = " + tables
                    + " tables per sequence, at most " + SnapshotFormat.MAX_TABLES_PER_SEQUENCE + " supported");
        }
        long rowBytes;
        try {
            rowBytes = dtype.rowBytes(h.headDim());
        } catch (KvSlabException e) {
            throw corrupt(file, "invalid layout: " + e.getMessage());
        }
        DType valueDtype = dtype;
        long valueRowBytes = rowBytes;
        if (h.version() >= 2) {
            // The row geometry is stated, not only implied: a file whose rows are not this build's rows of its
            // dtype (another group layout) is refused rather than misread.
            if (h.rowBytes() != rowBytes) {
                throw corrupt(file, "header says " + h.rowBytes() + " bytes per row, but " + dtype + " rows of headDim "
                        + h.headDim() + " are " + rowBytes + " bytes");
            }
            valueDtype = DType.ofCode(h.valueDtypeCode());
            if (valueDtype == null) {
                throw corrupt(file, "unknown V dtype code " + h.valueDtypeCode()
                        + " (0 = F32, 1 = F16, 2 = BF16, 3 = Q8_0, 4 = Q4_0)");
            }
            if (h.version() == 2 && valueDtype != dtype) {
                throw corrupt(file, "V rows are dtype code " + h.valueDtypeCode() + " but K rows code "
                        + h.dtypeCode() + "; version 2 stores K and V in one dtype (version 3 may differ)");
            }
            try {
                valueRowBytes = valueDtype.rowBytes(h.headDim());
            } catch (KvSlabException e) {
                throw corrupt(file, "invalid layout: " + e.getMessage());
            }
            if (h.valueRowBytes() != valueRowBytes) {
                throw corrupt(file, "header says " + h.valueRowBytes() + " bytes per V row, but " + valueDtype
                        + " rows of headDim " + h.headDim() + " are " + valueRowBytes + " bytes");
            }
        }
        long blockBytes = (long) h.tokensPerBlock() * Math.max(rowBytes, valueRowBytes);   // <= 2^16 x 2^19
        if (blockBytes > SnapshotFormat.MAX_BLOCK_BYTES) {
            throw corrupt(file, "tokensPerBlock x " + Math.max(rowBytes, valueRowBytes) + " bytes per row = "
                    + blockBytes + " bytes per block, at most " + SnapshotFormat.MAX_BLOCK_BYTES + " supported");
        }
        try {
            return new KvLayout(h.layers(), h.queryHeads(), h.kvHeads(), h.headDim(), dtype, valueDtype,
                    h.tokensPerBlock());
        } catch (KvSlabException e) {
            throw corrupt(file, "invalid layout: " + e.getMessage());
        }
    }

    private static void layoutField(String file, String name, int value, int max) {
        if (value < 1 || value > max) {
            throw corrupt(file, "layout field " + name + " is " + value + ", allowed [1, " + max + "]");
        }
    }

    // ---------------------------------------------------------------- sections

    private void checkSectionCrc(String section, long offset, long bytes) {
        long body = bytes - SnapshotFormat.CRC_BYTES;
        CRC32C crc = new CRC32C();
        byte[] chunk = new byte[CHUNK];
        for (long pos = 0; pos < body; ) {
            int len = (int) Math.min(CHUNK, body - pos);
            in.readFully(offset + pos, chunk, len);
            crc.update(chunk, 0, len);
            pos += len;
        }
        byte[] tail = new byte[SnapshotFormat.CRC_BYTES];
        in.readFully(offset + body, tail, tail.length);
        int stored = ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN).getInt();
        if (stored != (int) crc.getValue()) {
            throw corrupt(file, section + " checksum mismatch (stored 0x" + Integer.toHexString(stored)
                    + ", computed 0x" + Integer.toHexString((int) crc.getValue()) + ")");
        }
    }

    private void readDirectory() {
        int blocks = header.blocks();
        blockOffsets = new long[blocks];
        blockRows = new int[blocks];
        blockCrcs = new int[blocks];
        byte[] kinds = new byte[blocks];
        int[] refs = new int[blocks];
        long dataEnd = header.dataOffset() + header.dataBytes();
        SectionInput d = new SectionInput(in, "block directory", header.directoryOffset(),
                header.directoryOffset() + header.directoryBytes() - SnapshotFormat.CRC_BYTES);
        long expected = header.dataOffset();
        for (int b = 0; b < blocks; b++) {
            blockOffsets[b] = d.getLong();
            blockRows[b] = d.getInt();
            kinds[b] = d.getByte();
            d.skip(3);
            refs[b] = d.getInt();
            blockCrcs[b] = d.getInt();
            if (blockOffsets[b] != expected) {
                throw corrupt(file, "block " + b + " starts at " + blockOffsets[b] + ", expected " + expected);
            }
            if (blockRows[b] < 1 || blockRows[b] > layout.tokensPerBlock()) {
                throw corrupt(file, "block " + b + " has " + blockRows[b] + " rows, allowed [1, "
                        + layout.tokensPerBlock() + "]");
            }
            if (kinds[b] != SnapshotFormat.KIND_KEY && kinds[b] != SnapshotFormat.KIND_VALUE) {
                throw corrupt(file, "block " + b + " has kind " + kinds[b] + ", allowed 0 (K) or 1 (V)");
            }
            if (refs[b] < 1) {
                throw corrupt(file, "block " + b + " has " + refs[b] + " references, at least 1 needed");
            }
            long rowBytes = layout.rowBytes(kinds[b] == SnapshotFormat.KIND_KEY);
            long payload = blockRows[b] * rowBytes;   // <= MAX_BLOCK_BYTES: both factors are bounded
            expected += payload;
            if (expected > dataEnd) {
                throw corrupt(file, "block " + b + " (" + blockRows[b] + " rows of " + rowBytes + " bytes) ends at "
                        + expected + ", past the data section's end " + dataEnd);
            }
            maxPayload = (int) Math.max(maxPayload, payload);
            shared += refs[b] > 1 ? 1 : 0;
        }
        if (expected != dataEnd) {
            throw corrupt(file, "block payloads end at " + expected + ", the data section at " + dataEnd);
        }
        kindsForTables = kinds;
        refsForTables = refs;
    }

    private void readTables() {
        int n = header.sequences();
        int layers = layout.layers();
        int kvHeads = layout.kvHeads();
        int tpb = layout.tokensPerBlock();
        // An empty table is 8 bytes (row and block counts); layers x kvHeads <= 2^24 keeps this exact.
        long tableBytesMin = 8L + 8L * layers * kvHeads;
        long bodyEnd = header.tablesOffset() + header.tablesBytes() - SnapshotFormat.CRC_BYTES;
        long body = bodyEnd - header.tablesOffset();
        if (n > 0 && (body / n) < tableBytesMin) {
            throw corrupt(file, n + " sequences of " + layers + " x " + kvHeads + " tables need at least " + n
                    + " x " + tableBytesMin + " bytes, the table section holds " + body + "; allowed sequence count "
                    + "[0, " + body / tableBytesMin + "]");
        }
        SectionInput t = new SectionInput(in, "table section", header.tablesOffset(), bodyEnd);
        int[] seen = new int[blockRows.length];
        firstUse = new String[blockRows.length];
        ids = new long[n];
        images = new TableImage[n][layers][kvHeads];
        for (int i = 0; i < n; i++) {
            ids[i] = t.getLong();
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    String where = "sequence " + ids[i] + ", layer " + l + ", KV head " + h;
                    int length = t.getInt();
                    int blocks = t.getInt();
                    if (length < 0 || 8L * length > t.remaining()) {
                        throw corrupt(file, where + ": row count " + length + " does not fit the table section "
                                + "(allowed [0, " + t.remaining() / 8 + "])");
                    }
                    if (blocks != (length + tpb - 1) / tpb) {
                        throw corrupt(file, where + ": " + length + " rows need " + ((length + tpb - 1) / tpb)
                                + " blocks, the table lists " + blocks);
                    }
                    long[] positions = new long[length];
                    for (int r = 0; r < length; r++) {
                        positions[r] = t.getLong();
                        if (positions[r] < 0 || positions[r] == Long.MAX_VALUE
                                || (r > 0 && positions[r] <= positions[r - 1])) {
                            throw corrupt(file, where + ": positions must be in [0, Long.MAX_VALUE) and strictly "
                                    + "increasing, row "
                                    + r + " has " + positions[r]);
                        }
                    }
                    int[] keys = blockIndices(t, blocks, length, SnapshotFormat.KIND_KEY, seen, where);
                    int[] values = blockIndices(t, blocks, length, SnapshotFormat.KIND_VALUE, seen, where);
                    images[i][l][h] = new TableImage(positions, keys, values);
                    rows += length;
                }
            }
        }
        if (t.remaining() != 0) {
            throw corrupt(file, "table section has " + t.remaining() + " bytes after the last table");
        }
        for (int b = 0; b < seen.length; b++) {
            if (seen[b] != refsForTables[b]) {
                throw corrupt(file, "block " + b + " is named by " + seen[b] + " table slots, the directory says "
                        + refsForTables[b]);
            }
        }
    }

    private int[] blockIndices(SectionInput t, int blocks, int length, byte kind, int[] seen, String where) {
        int tpb = layout.tokensPerBlock();
        int[] idx = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            idx[b] = t.getInt();
            String slot = where + ", " + (kind == SnapshotFormat.KIND_KEY ? "K" : "V") + " block " + b;
            if (idx[b] < 0 || idx[b] >= blockRows.length) {
                throw corrupt(file, slot + " names block " + idx[b] + ", allowed [0, " + blockRows.length + ")");
            }
            if (kindsForTables[idx[b]] != kind) {
                throw corrupt(file, slot + " names block " + idx[b] + ", which is stored as the other kind");
            }
            int need = Math.min(tpb, length - b * tpb);
            if (blockRows[idx[b]] < need) {
                throw corrupt(file, slot + " needs " + need + " rows, block " + idx[b] + " stores "
                        + blockRows[idx[b]]);
            }
            if (seen[idx[b]]++ == 0) {
                firstUse[idx[b]] = slot;
            }
        }
        return idx;
    }

    /**
     * Reads block b's payload into buffer, checks its CRC32C and that every value is finite in the layout's
     * dtype (the rule append enforces); returns the payload length.
     */
    private int readBlock(int b, byte[] buffer) {
        boolean keys = kindsForTables[b] == SnapshotFormat.KIND_KEY;
        DType dtype = layout.dtype(keys);
        int len = (int) (blockRows[b] * layout.rowBytes(keys));
        in.readFully(blockOffsets[b], buffer, len);
        CRC32C crc = new CRC32C();
        crc.update(buffer, 0, len);
        if ((int) crc.getValue() != blockCrcs[b]) {
            throw corrupt(file, "block " + b + " checksum mismatch (stored 0x" + Integer.toHexString(blockCrcs[b])
                    + ", computed 0x" + Integer.toHexString((int) crc.getValue()) + ")");
        }
        int bad = PayloadValues.firstNonFinite(buffer, len, dtype, layout.headDim());
        if (bad >= 0) {
            int row = (int) (bad / layout.headDim());
            int element = (int) (bad % layout.headDim());
            String kind = kindsForTables[b] == SnapshotFormat.KIND_KEY ? "K" : "V";
            throw corrupt(file, "data section, block " + b + " (" + kind + " rows"
                    + (firstUse != null && firstUse[b] != null ? " of " + firstUse[b] : "") + "), row " + row
                    + ", element " + element + " is " + PayloadValues.describe(buffer, bad, dtype, layout.headDim())
                    + "; restored rows must be finite " + dtype + " values, as append requires");
        }
        return len;
    }

    /** Allocates and fills every block; on any failure the staging is closed (its blocks freed). */
    private BlockStaging stage(KvStore store) {
        boolean[] keyBlocks = new boolean[blockRows.length];
        for (int b = 0; b < keyBlocks.length; b++) {
            keyBlocks[b] = kindsForTables[b] == SnapshotFormat.KIND_KEY;
        }
        BlockStaging staging = RawBlocks.stage(store, keyBlocks);
        try {
            byte[] buffer = new byte[maxPayload];
            for (int b = 0; b < blockRows.length; b++) {
                readBlock(b, buffer);   // checked again: the file may have changed since verify()
                staging.write(b, buffer, 0, blockRows[b]);
            }
            return staging;
        } catch (RuntimeException e) {
            staging.close();
            throw e;
        }
    }

    private static SnapshotException corrupt(String file, String what) {
        return SnapshotException.corrupt("snapshot " + file + " is corrupt: " + what);
    }
}
