package io.kvslab.snapshot;

import io.kvslab.KvSlabException;
import io.kvslab.BlockStaging;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.RawBlocks;
import io.kvslab.Sequence;
import io.kvslab.TableImage;
import net.openhft.chronicle.bytes.MappedBytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Reads and verifies a snapshot file through a read-only Chronicle {@link MappedBytes}. {@link #open} checks the
 * header; {@link #verify} checks every checksum and the whole structure before anything is allocated; the
 * restore methods then stage all blocks (re-checking each block's CRC as it is copied) and commit them in one
 * step, so a bad file restores nothing.
 */
final class SnapshotReader implements AutoCloseable {
    private static final int CHUNK = 64 * 1024;

    private final String file;
    private final MappedBytes in;
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
    private long rows;
    private int shared;

    private SnapshotReader(String file, MappedBytes in, long size, SnapshotFormat.Header header, KvLayout layout) {
        this.file = file;
        this.in = in;
        this.size = size;
        this.header = header;
        this.layout = layout;
    }

    /** Opens a snapshot and checks its header (magic, version, checksum, size, section bounds, layout fields). */
    static SnapshotReader open(Path path) {
        if (path == null) {
            throw new SnapshotException("snapshot path must not be null");
        }
        String file = path.toString();
        long size;
        try {
            size = Files.size(path);
        } catch (NoSuchFileException e) {
            throw new SnapshotException("snapshot " + file + " does not exist", e);
        } catch (IOException e) {
            throw new SnapshotException("cannot read snapshot " + file + ": " + e, e);
        }
        if (size < SnapshotFormat.HEADER_BYTES) {
            throw new CorruptSnapshotException("snapshot " + file + " is truncated: it has " + size
                    + " bytes, the header alone needs " + SnapshotFormat.HEADER_BYTES);
        }
        MappedBytes in;
        try {
            in = MappedBytes.readOnly(path.toFile());
        } catch (IOException e) {
            throw new SnapshotException("cannot map snapshot " + file + ": " + e, e);
        }
        try {
            in.readLimit(size);
            byte[] head = new byte[SnapshotFormat.HEADER_BYTES];
            readFully(in, file, 0, head, head.length);
            SnapshotFormat.Header h = checkHeader(file, head, size);
            return new SnapshotReader(file, in, size, h, layoutOf(file, h));
        } catch (RuntimeException e) {
            in.releaseLast();
            throw e;
        }
    }

    KvLayout layout() {
        return layout;
    }

    /** Throws unless the snapshot's layout equals the store's. */
    void checkLayout(KvStore store) {
        if (!layout.equals(store.layout())) {
            throw new SnapshotLayoutMismatchException(file, layout, store.layout());
        }
    }

    /** Verifies section checksums, the directory, the tables and every block checksum. Idempotent. */
    SnapshotInfo verify() {
        if (!verified) {
            checkSectionCrc("table section", header.tablesOffset(), header.tablesBytes());
            checkSectionCrc("block directory", header.directoryOffset(), header.directoryBytes());
            readDirectory();
            readTables();
            byte[] buffer = new byte[(int) layout.blockBytes()];
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
            throw new SnapshotException("snapshot " + file + " holds " + ids.length + " sequences; restoring into "
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
        in.releaseLast();
    }

    // ---------------------------------------------------------------- header

    private static SnapshotFormat.Header checkHeader(String file, byte[] head, long size) {
        if (!Arrays.equals(head, 0, SnapshotFormat.MAGIC.length, SnapshotFormat.MAGIC, 0,
                SnapshotFormat.MAGIC.length)) {
            throw new CorruptSnapshotException("snapshot " + file + " is not a KVSlab snapshot: it does not start "
                    + "with the magic \"KVSLSNAP\" (an incomplete save has a zeroed header)");
        }
        SnapshotFormat.Header h = SnapshotFormat.Header.decode(head);
        if (h.version() != SnapshotFormat.VERSION) {
            throw new UnsupportedSnapshotVersionException(file, h.version());
        }
        int stored = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(SnapshotFormat.OFF_HEADER_CRC);
        int actual = SnapshotFormat.crc(head, 0, SnapshotFormat.OFF_HEADER_CRC);
        if (stored != actual) {
            throw new CorruptSnapshotException("snapshot " + file + ": header checksum mismatch (stored 0x"
                    + Integer.toHexString(stored) + ", computed 0x" + Integer.toHexString(actual) + ")");
        }
        if (h.headerBytes() != SnapshotFormat.HEADER_BYTES) {
            throw corrupt(file, "header size is " + h.headerBytes() + ", version 1 has " + SnapshotFormat.HEADER_BYTES);
        }
        if (h.totalBytes() != size) {
            throw new CorruptSnapshotException("snapshot " + file + (size < h.totalBytes()
                    ? " is truncated: the header says " + h.totalBytes() + " bytes, the file has " + size
                    : " has " + (size - h.totalBytes()) + " trailing bytes after its " + h.totalBytes()
                    + " bytes of content"));
        }
        if (h.sequences() < 0 || h.blocks() < 0) {
            throw corrupt(file, "negative sequence or block count (" + h.sequences() + ", " + h.blocks() + ")");
        }
        long expectDirectory = (long) SnapshotFormat.DIRECTORY_ENTRY_BYTES * h.blocks() + SnapshotFormat.CRC_BYTES;
        boolean ok = h.tablesOffset() == SnapshotFormat.HEADER_BYTES
                && h.tablesBytes() >= SnapshotFormat.CRC_BYTES && h.tablesBytes() <= size
                && h.dataOffset() == h.tablesOffset() + h.tablesBytes()
                && h.dataBytes() >= 0 && h.dataBytes() <= size
                && h.directoryOffset() == h.dataOffset() + h.dataBytes()
                && h.directoryBytes() == expectDirectory
                && h.directoryOffset() + h.directoryBytes() == h.totalBytes();
        if (!ok) {
            throw corrupt(file, "section bounds are inconsistent (tables " + h.tablesOffset() + "+" + h.tablesBytes()
                    + ", data " + h.dataOffset() + "+" + h.dataBytes() + ", directory " + h.directoryOffset() + "+"
                    + h.directoryBytes() + ", total " + h.totalBytes() + ")");
        }
        return h;
    }

    private static KvLayout layoutOf(String file, SnapshotFormat.Header h) {
        DType dtype = null;
        for (DType d : DType.values()) {
            if (d.code() == h.dtypeCode()) {
                dtype = d;
            }
        }
        if (dtype == null) {
            throw corrupt(file, "unknown dtype code " + h.dtypeCode() + " (0 = F32, 1 = F16, 2 = BF16)");
        }
        try {
            return new KvLayout(h.layers(), h.queryHeads(), h.kvHeads(), h.headDim(), dtype, h.tokensPerBlock());
        } catch (KvSlabException e) {
            throw corrupt(file, "invalid layout: " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- sections

    private void checkSectionCrc(String section, long offset, long bytes) {
        long body = bytes - SnapshotFormat.CRC_BYTES;
        CRC32C crc = new CRC32C();
        byte[] chunk = new byte[CHUNK];
        for (long pos = 0; pos < body; ) {
            int len = (int) Math.min(CHUNK, body - pos);
            readFully(in, file, offset + pos, chunk, len);
            crc.update(chunk, 0, len);
            pos += len;
        }
        byte[] tail = new byte[SnapshotFormat.CRC_BYTES];
        readFully(in, file, offset + body, tail, tail.length);
        int stored = ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN).getInt();
        if (stored != (int) crc.getValue()) {
            throw corrupt(file, section + " checksum mismatch (stored 0x" + Integer.toHexString(stored)
                    + ", computed 0x" + Integer.toHexString((int) crc.getValue()) + ")");
        }
    }

    private void readDirectory() {
        int blocks = header.blocks();
        long rowBytes = layout.rowBytes();
        blockOffsets = new long[blocks];
        blockRows = new int[blocks];
        blockCrcs = new int[blocks];
        byte[] kinds = new byte[blocks];
        int[] refs = new int[blocks];
        SectionInput d = new SectionInput(in, file, "block directory", header.directoryOffset(),
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
            expected += blockRows[b] * rowBytes;
            shared += refs[b] > 1 ? 1 : 0;
        }
        if (expected != header.dataOffset() + header.dataBytes()) {
            throw corrupt(file, "block payloads end at " + expected + ", the data section at "
                    + (header.dataOffset() + header.dataBytes()));
        }
        kindsForTables = kinds;
        refsForTables = refs;
    }

    private void readTables() {
        int n = header.sequences();
        int layers = layout.layers();
        int kvHeads = layout.kvHeads();
        int tpb = layout.tokensPerBlock();
        long tableBytesMin = 8L + 8L * layers * kvHeads;
        long bodyEnd = header.tablesOffset() + header.tablesBytes() - SnapshotFormat.CRC_BYTES;
        if ((long) n * tableBytesMin > bodyEnd - header.tablesOffset()) {
            throw corrupt(file, n + " sequences cannot fit in a table section of " + header.tablesBytes() + " bytes");
        }
        SectionInput t = new SectionInput(in, file, "table section", header.tablesOffset(), bodyEnd);
        int[] seen = new int[blockRows.length];
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
                        throw corrupt(file, where + ": row count " + length + " does not fit the table section");
                    }
                    if (blocks != (length + tpb - 1) / tpb) {
                        throw corrupt(file, where + ": " + length + " rows need " + ((length + tpb - 1) / tpb)
                                + " blocks, the table lists " + blocks);
                    }
                    long[] positions = new long[length];
                    for (int r = 0; r < length; r++) {
                        positions[r] = t.getLong();
                        if (positions[r] < 0 || (r > 0 && positions[r] <= positions[r - 1])) {
                            throw corrupt(file, where + ": positions must be >= 0 and strictly increasing, row "
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
            seen[idx[b]]++;
        }
        return idx;
    }

    /** Reads block b's payload into buffer and checks its CRC32C; returns the payload length. */
    private int readBlock(int b, byte[] buffer) {
        int len = (int) (blockRows[b] * layout.rowBytes());
        readFully(in, file, blockOffsets[b], buffer, len);
        CRC32C crc = new CRC32C();
        crc.update(buffer, 0, len);
        if ((int) crc.getValue() != blockCrcs[b]) {
            throw corrupt(file, "block " + b + " checksum mismatch (stored 0x" + Integer.toHexString(blockCrcs[b])
                    + ", computed 0x" + Integer.toHexString((int) crc.getValue()) + ")");
        }
        return len;
    }

    /** Allocates and fills every block; on any failure the staging is closed (its blocks freed). */
    private BlockStaging stage(KvStore store) {
        BlockStaging staging = RawBlocks.stage(store, blockRows.length);
        try {
            byte[] buffer = new byte[(int) layout.blockBytes()];
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

    static void readFully(MappedBytes in, String file, long offset, byte[] dst, int len) {
        long got;
        try {
            // Streaming reads: a chunked MappedBytes maps the chunk of the read position (its absolute
            // read(long, byte[], ...) only sees the current chunk).
            in.readPosition(offset);
            got = len == 0 ? 0 : in.read(dst, 0, len);
        } catch (RuntimeException e) {
            throw new CorruptSnapshotException("snapshot " + file + ": cannot read " + len + " bytes at " + offset
                    + " (" + e.getMessage() + ")");
        }
        if (got != len) {
            throw new CorruptSnapshotException("snapshot " + file + " is truncated: " + len + " bytes at " + offset
                    + " requested, " + Math.max(0, got) + " available");
        }
    }

    private static CorruptSnapshotException corrupt(String file, String what) {
        return new CorruptSnapshotException("snapshot " + file + " is corrupt: " + what);
    }
}
