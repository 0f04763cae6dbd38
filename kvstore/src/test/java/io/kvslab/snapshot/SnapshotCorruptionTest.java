package io.kvslab.snapshot;

import io.kvslab.KvSlabException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kind of damage is rejected with a typed exception naming the problem, and nothing is restored: the
 * target store's live bytes, its sequences and a restoreInto target are exactly as before.
 */
class SnapshotCorruptionTest {
    private static final KvLayout LAYOUT = new KvLayout(2, 4, 2, 8, DType.F32, 4);

    @TempDir
    Path dir;

    private byte[] good;
    private SnapshotFormat.Header header;
    /** The store restores go into, with one sequence of its own that must survive every failed restore. */
    private KvStore target;
    private Sequence bystander;

    @BeforeEach
    void writeAGoodSnapshot() throws IOException {
        Path file = dir.resolve("good.kvs");
        try (KvStore store = KvStore.open(LAYOUT); Sequence s = store.newSequence()) {
            Rows.fill(s, 0, 10);
            try (Sequence child = s.fork()) {
                Rows.fill(child, 10, 12);
                s.keep(0, 1, new int[] {1, 2, 8});
                Snapshots.save(List.of(s, child), file);
            }
        }
        good = Files.readAllBytes(file);
        header = SnapshotFormat.Header.decode(Arrays.copyOf(good, SnapshotFormat.HEADER_BYTES));
        target = KvStore.open(LAYOUT);
        bystander = target.newSequence();
        Rows.fill(bystander, 0, 7);
        // The good file does restore: the corruption cases below fail because of their damage alone.
        Snapshots.restoreAll(target, file).forEach(r -> r.sequence().close());
    }

    @AfterEach
    void closeTarget() {
        bystander.close();
        target.close();
    }

    private Path write(byte[] bytes) throws IOException {
        Path f = Files.createTempFile(dir, "bad", ".kvs");
        Files.write(f, bytes);
        return f;
    }

    private byte[] flipped(long offset) {
        byte[] b = good.clone();
        b[(int) offset] ^= 0x5A;
        return b;
    }

    /** Rejected by restoreAll, restoreInto and inspect with the type and message fragment; nothing restored. */
    private SnapshotException assertRejected(byte[] bytes, SnapshotException.Reason reason, String fragment)
            throws IOException {
        Path f = write(bytes);
        long live = target.stats().liveBytes();
        List<Sequence> sequences = target.sequences();
        byte[] keysBefore = Rows.raw(bystander, 1, 1, true);
        long[] positionsBefore = bystander.positions(0, 0);

        SnapshotException e = Rejections.assertRejected(reason, () -> Snapshots.restoreAll(target, f));
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention '"
                + fragment + "'");
        assertTrue(e.getMessage().contains(f.toString()), "message names the file");
        Rejections.assertRejected(reason, () -> Snapshots.restoreInto(bystander, f));
        if (reason != SnapshotException.Reason.LAYOUT_MISMATCH) {
            Rejections.assertRejected(reason, () -> Snapshots.inspect(f));
        }

        assertEquals(live, target.stats().liveBytes(), "no block left allocated");
        assertEquals(sequences, target.sequences(), "no sequence created or closed");
        assertArrayEquals(keysBefore, Rows.raw(bystander, 1, 1, true), "restoreInto target unchanged");
        assertArrayEquals(positionsBefore, bystander.positions(0, 0));
        return e;
    }

    @Test
    void everyCorruptionIsAKvSlabException() {
        assertTrue(KvSlabException.class.isAssignableFrom(SnapshotException.class));
    }

    @Test
    void flippedBytesInEachPartAreCaughtByTheirChecksum() throws IOException {
        assertRejected(flipped(0), SnapshotException.Reason.CORRUPT, "not a KVSlab snapshot");
        assertRejected(flipped(SnapshotFormat.OFF_QUERY_HEADS), SnapshotException.Reason.CORRUPT, "header checksum");
        assertRejected(flipped(SnapshotFormat.OFF_DATA_OFFSET + 2), SnapshotException.Reason.CORRUPT,
                "header checksum");
        assertRejected(flipped(SnapshotFormat.OFF_HEADER_CRC + 1), SnapshotException.Reason.CORRUPT,
                "header checksum");
        assertRejected(flipped(header.tablesOffset() + 8 + 8 + 8 + 3), SnapshotException.Reason.CORRUPT,
                "table section checksum");
        assertRejected(flipped(header.dataOffset() - 2), SnapshotException.Reason.CORRUPT, "table section checksum");
        assertRejected(flipped(header.dataOffset() + 5), SnapshotException.Reason.CORRUPT, "block 0 checksum");
        assertRejected(flipped(header.directoryOffset() - 1), SnapshotException.Reason.CORRUPT,
                "block " + (header.blocks() - 1) + " checksum");
        assertRejected(flipped(header.directoryOffset() + 9), SnapshotException.Reason.CORRUPT,
                "block directory checksum");
        assertRejected(flipped(good.length - 1), SnapshotException.Reason.CORRUPT, "block directory checksum");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 64, 127, 128, 129, 200, -1, -2, -3, -4, -5})
    void truncatedFilesAreRejected(int at) throws IOException {
        // -1 .. -5: inside the data, at the data/directory boundary, inside the directory, one byte short.
        long cut = switch (at) {
            case -1 -> header.dataOffset() + 7;
            case -2 -> header.directoryOffset();
            case -3 -> header.directoryOffset() + 30;
            case -4 -> good.length - 1;
            case -5 -> header.dataOffset();
            default -> at;
        };
        assertRejected(Arrays.copyOf(good, (int) cut), SnapshotException.Reason.CORRUPT, "truncated");
    }

    @Test
    void trailingBytesAreRejected() throws IOException {
        assertRejected(Arrays.copyOf(good, good.length + 3), SnapshotException.Reason.CORRUPT, "3 trailing bytes");
    }

    @Test
    void otherFormatVersionsAreRejected() throws IOException {
        byte[] v4 = good.clone();
        ByteBuffer.wrap(v4).order(ByteOrder.LITTLE_ENDIAN).putInt(SnapshotFormat.OFF_VERSION, 4);
        rechecksumHeader(v4);
        SnapshotException e = assertRejected(v4, SnapshotException.Reason.UNSUPPORTED_VERSION, "format version 4");
        assertTrue(e.getMessage().contains("has format version 4; this build reads versions 1 to 3"), e.getMessage());
        // Checked before the header checksum: a future version may lay its header out differently.
        byte[] v0 = good.clone();
        ByteBuffer.wrap(v0).order(ByteOrder.LITTLE_ENDIAN).putInt(SnapshotFormat.OFF_VERSION, 0);
        assertRejected(v0, SnapshotException.Reason.UNSUPPORTED_VERSION, "reads versions 1 to 3");
    }

    @Test
    void snapshotsOfAnotherLayoutAreRejected() throws IOException {
        for (KvLayout other : List.of(new KvLayout(2, 4, 2, 8, DType.F16, 4), new KvLayout(2, 4, 2, 8, DType.F32, 8),
                new KvLayout(3, 4, 2, 8, DType.F32, 4), new KvLayout(2, 4, 2, 16, DType.F32, 4),
                new KvLayout(2, 2, 1, 8, DType.F32, 4))) {
            Path f = dir.resolve("other.kvs");
            try (KvStore store = KvStore.open(other); Sequence s = store.newSequence()) {
                Rows.fill(s, 0, 5);
                Snapshots.save(s, f);
            }
            SnapshotException e = assertRejected(Files.readAllBytes(f), SnapshotException.Reason.LAYOUT_MISMATCH,
                    "was taken with layout");
            assertTrue(e.getMessage().contains("layout " + other + " but the store has " + LAYOUT), e.getMessage());
            assertEquals(other, Snapshots.inspect(f).layout(), "inspect names the file's layout");
        }
    }

    @Test
    void structuralDamageBehindValidChecksumsIsRejected() throws IOException {
        // Table (layer 0, head 0) of the first sequence: rows @136, blocks @140, positions @144.
        int rows = ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getInt(136);
        assertEquals(10, rows);
        int firstKeyIndex = 144 + 8 * rows;

        byte[] samePosition = good.clone();
        le(samePosition).putLong(152, 0);                       // positions[1] = positions[0]
        assertRejected(rechecksumTables(samePosition), SnapshotException.Reason.CORRUPT, "strictly increasing");

        byte[] badIndex = good.clone();
        le(badIndex).putInt(firstKeyIndex, 9999);
        assertRejected(rechecksumTables(badIndex), SnapshotException.Reason.CORRUPT, "names block 9999");

        byte[] wrongKind = good.clone();
        int valueIndexOfSlot0 = le(good).getInt(firstKeyIndex + 4 * 3);   // 10 rows = 3 blocks
        le(wrongKind).putInt(firstKeyIndex, valueIndexOfSlot0);
        assertRejected(rechecksumTables(wrongKind), SnapshotException.Reason.CORRUPT, "other kind");

        byte[] blockCount = good.clone();
        le(blockCount).putInt(140, 4);
        assertRejected(rechecksumTables(blockCount), SnapshotException.Reason.CORRUPT, "need 3 blocks");

        byte[] hugeRows = good.clone();
        le(hugeRows).putInt(136, Integer.MAX_VALUE);
        assertRejected(rechecksumTables(hugeRows), SnapshotException.Reason.CORRUPT, "does not fit");

        int entry0 = (int) header.directoryOffset();
        byte[] refs = good.clone();
        le(refs).putInt(entry0 + 16, le(good).getInt(entry0 + 16) + 1);
        assertRejected(rechecksumDirectory(refs), SnapshotException.Reason.CORRUPT, "the directory says");

        byte[] zeroRows = good.clone();
        le(zeroRows).putInt(entry0 + 8, 0);
        assertRejected(rechecksumDirectory(zeroRows), SnapshotException.Reason.CORRUPT, "has 0 rows");

        byte[] offset = good.clone();
        le(offset).putLong(entry0, 5);
        assertRejected(rechecksumDirectory(offset), SnapshotException.Reason.CORRUPT, "starts at 5");

        byte[] sections = good.clone();
        le(sections).putLong(SnapshotFormat.OFF_DATA_BYTES, header.dataBytes() + 8);
        rechecksumHeader(sections);
        assertRejected(sections, SnapshotException.Reason.CORRUPT, "section bounds");
    }

    @Test
    void missingAndEmptyFilesAreRejected() throws IOException {
        SnapshotException missing = Rejections.assertRejected(SnapshotException.Reason.IO,
                () -> Snapshots.restoreAll(target, dir.resolve("nope.kvs")));
        assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
        assertRejected(new byte[0], SnapshotException.Reason.CORRUPT, "truncated");
    }

    // ---- forging helpers: damage the structure, then make the checksums valid again

    private static ByteBuffer le(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void rechecksumHeader(byte[] b) {
        le(b).putInt(SnapshotFormat.OFF_HEADER_CRC, crc(b, 0, SnapshotFormat.OFF_HEADER_CRC));
    }

    private byte[] rechecksumTables(byte[] b) {
        int from = (int) header.tablesOffset();
        int end = (int) (header.dataOffset() - SnapshotFormat.CRC_BYTES);
        le(b).putInt(end, crc(b, from, end - from));
        return b;
    }

    private byte[] rechecksumDirectory(byte[] b) {
        int from = (int) header.directoryOffset();
        int end = b.length - SnapshotFormat.CRC_BYTES;
        le(b).putInt(end, crc(b, from, end - from));
        return b;
    }

    private static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
