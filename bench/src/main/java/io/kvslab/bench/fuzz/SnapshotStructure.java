package io.kvslab.bench.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The fields of a KVSlab snapshot file (format versions 1 and 2, docs/snapshots.md), read independently of the library's
 * reader: header, table section (per sequence an id, per (layer, KV head) row and block counts, positions, K and V
 * block indices), block directory (offset, rows, kind, references, CRC per block) and the section checksums.
 */
final class SnapshotStructure {
    static final int HEADER_BYTES = 128;

    private SnapshotStructure() {}

    /** Parses a valid snapshot; throws IllegalArgumentException if it is not one (seeds must be valid). */
    static Structure parse(String name, byte[] b) {
        if (b.length < HEADER_BYTES) {
            throw new IllegalArgumentException("seed " + name + " is no snapshot: " + b.length + " bytes");
        }
        ByteBuffer f = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        List<Field> fields = new ArrayList<>();
        Field version = add(fields, "header.version", 8, 4, FieldKind.ENUM);
        add(fields, "header.headerBytes", 12, 4, FieldKind.SIZE);
        Field layers = add(fields, "header.layers", 16, 4, FieldKind.DIM);
        Field qHeads = add(fields, "header.queryHeads", 20, 4, FieldKind.DIM);
        Field kvHeads = add(fields, "header.kvHeads", 24, 4, FieldKind.DIM);
        Field headDim = add(fields, "header.headDim", 28, 4, FieldKind.DIM);
        add(fields, "header.dtype", 32, 4, FieldKind.ENUM);
        Field tpb = add(fields, "header.tokensPerBlock", 36, 4, FieldKind.DIM);
        Field sequences = add(fields, "header.sequences", 40, 4, FieldKind.COUNT);
        Field blocks = add(fields, "header.blocks", 44, 4, FieldKind.COUNT);
        Field tablesOffset = add(fields, "header.tablesOffset", 48, 8, FieldKind.OFFSET);
        Field tablesBytes = add(fields, "header.tablesBytes", 56, 8, FieldKind.SIZE);
        Field dataOffset = add(fields, "header.dataOffset", 64, 8, FieldKind.OFFSET);
        Field dataBytes = add(fields, "header.dataBytes", 72, 8, FieldKind.SIZE);
        Field directoryOffset = add(fields, "header.directoryOffset", 80, 8, FieldKind.OFFSET);
        Field directoryBytes = add(fields, "header.directoryBytes", 88, 8, FieldKind.SIZE);
        Field total = add(fields, "header.totalBytes", 96, 8, FieldKind.SIZE);
        add(fields, "header.createdAt", 104, 8, FieldKind.VALUE);
        long v = version.read(b);
        if (v == 2) {   // version 2: row geometry in what version 1 reserved
            add(fields, "header.rowBytes", 112, 4, FieldKind.SIZE);
            add(fields, "header.valueDtype", 116, 4, FieldKind.ENUM);
            add(fields, "header.valueRowBytes", 120, 4, FieldKind.SIZE);
        }
        add(fields, "header.crc", 124, 4, FieldKind.CHECKSUM);
        if ((v != 1 && v != 2) || total.read(b) != b.length) {
            throw new IllegalArgumentException("seed " + name + " is no version-1 or -2 snapshot of its length");
        }
        List<List<Field>> products = new ArrayList<>();
        products.add(List.of(tpb, headDim));
        products.add(List.of(layers, kvHeads));
        products.add(List.of(layers, kvHeads, sequences));
        products.add(List.of(qHeads, kvHeads, headDim));
        products.add(List.of(blocks, tpb, headDim));
        List<List<Field>> offsets = new ArrayList<>();
        offsets.add(List.of(tablesOffset, dataOffset, directoryOffset));
        products.add(List.of(tablesBytes, dataBytes, directoryBytes));

        int nLayers = f.getInt(16);
        int nKv = f.getInt(24);
        int pos = (int) f.getLong(48);
        for (int s = 0; s < f.getInt(40); s++) {
            add(fields, "table[" + s + "].id", pos, 8, FieldKind.VALUE);
            pos += 8;
            for (int t = 0; t < nLayers * nKv; t++) {
                String at = "table[" + s + "][" + t + "]";
                Field length = add(fields, at + ".rows", pos, 4, FieldKind.COUNT);
                Field blockCount = add(fields, at + ".blocks", pos + 4, 4, FieldKind.COUNT);
                int rows = f.getInt(pos);
                int nb = f.getInt(pos + 4);
                products.add(List.of(length, blockCount));
                pos += 8;
                for (int r = 0; r < rows; r++) {
                    add(fields, at + ".position[" + r + "]", pos, 8, FieldKind.VALUE);
                    pos += 8;
                }
                for (int k = 0; k < 2 * nb; k++) {
                    add(fields, at + (k < nb ? ".K[" + k : ".V[" + (k - nb)) + "]", pos, 4, FieldKind.INDEX);
                    pos += 4;
                }
            }
        }
        add(fields, "tables.crc", pos, 4, FieldKind.CHECKSUM);
        int dir = (int) f.getLong(80);
        List<Field> blockOffsets = new ArrayList<>();
        int elementBytes = f.getInt(32) == 0 ? 4 : 2;
        long rowBytes = (long) f.getInt(28) * elementBytes;
        for (int i = 0; i < f.getInt(44); i++) {
            int e = dir + 24 * i;
            // payload: the first element of the block's first and last row (values the mutator sets to NaN / Inf)
            int payload = (int) f.getLong(e);
            int lastRow = (int) (payload + (f.getInt(e + 8) - 1) * rowBytes);
            add(fields, "block[" + i + "].row[0][0]", payload, elementBytes, FieldKind.VALUE);
            add(fields, "block[" + i + "].row[last][0]", lastRow, elementBytes, FieldKind.VALUE);
            blockOffsets.add(add(fields, "block[" + i + "].offset", e, 8, FieldKind.OFFSET));
            Field rows = add(fields, "block[" + i + "].rows", e + 8, 4, FieldKind.COUNT);
            add(fields, "block[" + i + "].kind", e + 12, 1, FieldKind.ENUM);
            add(fields, "block[" + i + "].refs", e + 16, 4, FieldKind.COUNT);
            add(fields, "block[" + i + "].crc", e + 20, 4, FieldKind.CHECKSUM);
            products.add(List.of(rows, headDim));
        }
        add(fields, "directory.crc", b.length - 4, 4, FieldKind.CHECKSUM);
        if (!blockOffsets.isEmpty()) {
            offsets.add(blockOffsets);
        }
        return new Structure(name, b, List.copyOf(fields), List.copyOf(products), List.copyOf(offsets), 1);
    }

    private static Field add(List<Field> fields, String name, int offset, int width, FieldKind kind) {
        Field f = new Field(name, offset, width, kind);
        fields.add(f);
        return f;
    }

    /** A snapshot's createdAt set to 0 (seeds then do not depend on the clock), checksums recomputed. */
    static byte[] normalize(byte[] b) {
        byte[] c = b.clone();
        ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putLong(104, 0);
        recomputeCrcs(c);
        return c;
    }

    /**
     * Makes every checksum of a (mutated) snapshot right again, following the mutated header and directory wherever
     * they still point inside the file; checksums of regions that do not are left alone. Never throws.
     */
    static void recomputeCrcs(byte[] b) {
        if (b.length < HEADER_BYTES) {
            return;
        }
        ByteBuffer f = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        long to = f.getLong(48);
        long tb = f.getLong(56);
        long dOff = f.getLong(80);
        long dBytes = f.getLong(88);
        int headDim = f.getInt(28);
        int dtype = f.getInt(32);
        int blocks = f.getInt(44);
        io.kvslab.DType dt = io.kvslab.DType.ofCode(dtype);
        long rowBytes;
        try {
            rowBytes = dt == null ? (long) headDim * 2 : dt.rowBytes(headDim);
        } catch (io.kvslab.KvArgumentException e) {
            rowBytes = (long) headDim * 2;   // an unusable layout: block fields are still listed, sized as f16
        }
        if (inside(b, dOff, dBytes) && dBytes >= 4 && blocks >= 0 && 24L * blocks <= dBytes - 4) {
            for (int i = 0; i < blocks; i++) {
                int e = (int) dOff + 24 * i;
                long off = f.getLong(e);
                int rows = f.getInt(e + 8);
                if (rows > 0 && rowBytes > 0 && rows <= (1L << 40) / rowBytes && inside(b, off, rows * rowBytes)) {
                    f.putInt(e + 20, crc(b, (int) off, (int) (rows * rowBytes)));
                }
            }
            f.putInt((int) (dOff + dBytes - 4), crc(b, (int) dOff, (int) dBytes - 4));
        }
        if (inside(b, to, tb) && tb >= 4) {
            f.putInt((int) (to + tb - 4), crc(b, (int) to, (int) tb - 4));
        }
        f.putInt(124, crc(b, 0, 124));
    }

    private static boolean inside(byte[] b, long off, long len) {
        return off >= 0 && len >= 0 && off <= b.length && len <= b.length - off;
    }

    static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
