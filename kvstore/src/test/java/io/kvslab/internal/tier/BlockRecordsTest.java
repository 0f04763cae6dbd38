package io.kvslab.internal.tier;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.tier.BlockKey;
import io.kvslab.tier.TierRecordException;
import io.kvslab.tier.TierRecordException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.CRC32C;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The block-record codec: round trips, the byte layout written by hand, and hostile input (truncated, every single
 * bit flipped, wrong fingerprint, huge or negative counts with a valid CRC, NaN rows with a valid CRC, bad
 * positions). Every bad record ends in a {@link TierRecordException} with the reason of the check that caught it.
 */
class BlockRecordsTest {
    private static final KvLayout LAYOUT = new KvLayout(3, 4, 2, 8, DType.F16, 4);
    private static final BlockKey KEY = new BlockKey(0x0123456789abcdefL, 42);

    /** Finite f16 rows: element i holds the f16 bits of a small value derived from i and the seed. */
    private static byte[] rows(int bytes, long seed) {
        Random r = new Random(seed);
        byte[] b = new byte[bytes];
        for (int i = 0; i + 1 < bytes; i += 2) {
            short h = Float.floatToFloat16((float) r.nextGaussian());
            b[i] = (byte) h;
            b[i + 1] = (byte) (h >> 8);
        }
        return b;
    }

    private static BlockRecord oneTable(int rows) {
        long[] p = new long[rows];
        for (int i = 0; i < rows; i++) {
            p[i] = 100 + 3L * i;
        }
        return new BlockRecord(BlockRecord.Kind.KEYS, 2, 1, p, rows((int) (rows * LAYOUT.rowBytes()), 7));
    }

    private static BlockRecord everyTable() {
        int rows = LAYOUT.tokensPerBlock();
        long[] p = {8, 9, 10, 11};
        int bytes = (int) BlockRecords.rowsBytes(LAYOUT, BlockRecord.Kind.KEYS_AND_VALUES, true, rows);
        return new BlockRecord(BlockRecord.Kind.KEYS_AND_VALUES, BlockRecord.ALL, BlockRecord.ALL, p, rows(bytes, 9));
    }

    private static int crc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    /** Recomputes the trailing CRC, so that only the check under test can reject the record. */
    private static byte[] resealed(byte[] b) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length - 4, crc(b, 0, b.length - 4));
        return b;
    }

    private static Reason rejected(byte[] b) {
        return assertThrows(TierRecordException.class, () -> BlockRecords.decode(LAYOUT, KEY, b)).reason();
    }

    @Test
    void roundTripsOneTableAndEveryTable() {
        for (BlockRecord r : new BlockRecord[] {oneTable(1), oneTable(3), oneTable(4), everyTable()}) {
            byte[] enc = BlockRecords.encode(LAYOUT, r);
            BlockRecord d = BlockRecords.decode(LAYOUT, KEY, enc);
            assertEquals(r.kind(), d.kind());
            assertEquals(r.layer(), d.layer());
            assertEquals(r.kvHead(), d.kvHead());
            assertArrayEquals(r.positions(), d.positions());
            assertArrayEquals(r.rows(), d.rows());
            BlockRecords.expect(d, KEY, r.kind(), r.layer(), r.kvHead(), r.positions());
        }
    }

    /**
     * {@code verify} reads a record where it lies inside a larger buffer (a prefix value's envelope before it,
     * anything after it) without copying it: the view's rows are the record's rows at their place in the buffer;
     * every single bit flip inside the record's range is rejected with the same reason {@code decode} gives for
     * the record on its own, and flips outside the range change nothing.
     */
    @Test
    void verifyReadsARecordInPlaceInsideALargerBufferWithEveryCheckOfDecode() {
        BlockRecord r = everyTable();
        byte[] enc = BlockRecords.encode(LAYOUT, r);
        int off = 37;
        byte[] buf = new byte[off + enc.length + 11];
        new Random(5).nextBytes(buf);
        System.arraycopy(enc, 0, buf, off, enc.length);
        VerifiedRecord v = BlockRecords.verify(LAYOUT, KEY, buf, off, enc.length);
        assertTrue(v.buffer() == buf, "a view of the given bytes, not a copy");
        assertEquals(off + 48 + 8 * r.rowCount(), v.rowsOffset());
        assertEquals(r.rows().length, v.rowsLength());
        assertArrayEquals(r.rows(), Arrays.copyOfRange(buf, v.rowsOffset(), v.rowsOffset() + v.rowsLength()));
        assertArrayEquals(r.positions(), v.positions());
        assertEquals(r.kind(), v.kind());
        assertArrayEquals(r.rows(), v.toRecord().rows());
        for (int bit = 0; bit < enc.length * 8; bit++) {
            byte[] alone = enc.clone();
            alone[bit / 8] ^= (byte) (1 << (bit % 8));
            Reason expected = rejected(alone);
            buf[off + bit / 8] ^= (byte) (1 << (bit % 8));
            Reason got = assertThrows(TierRecordException.class,
                    () -> BlockRecords.verify(LAYOUT, KEY, buf, off, enc.length)).reason();
            assertEquals(expected, got, "bit " + bit);
            buf[off + bit / 8] ^= (byte) (1 << (bit % 8));
        }
        for (int i : new int[] {0, off - 1, off + enc.length, buf.length - 1}) {
            buf[i] ^= (byte) 0xff;
            assertArrayEquals(r.rows(), BlockRecords.verify(LAYOUT, KEY, buf, off, enc.length).toRecord().rows());
        }
        assertThrows(KvArgumentException.class, () -> BlockRecords.verify(LAYOUT, KEY, buf, off, buf.length));
        assertThrows(KvArgumentException.class, () -> BlockRecords.verify(LAYOUT, KEY, buf, -1, 10));
        // a range one byte short of the record: its header declares more than the range holds
        assertEquals(Reason.LENGTH_MISMATCH, assertThrows(TierRecordException.class,
                () -> BlockRecords.verify(LAYOUT, KEY, buf, off, enc.length - 1)).reason());
    }

    @Test
    void theBytesAreTheDocumentedLayout() {
        BlockRecord r = oneTable(3);
        byte[] b = BlockRecords.encode(LAYOUT, r);
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        // 48 header + 3 positions + 3 rows x 8 dims x 2 bytes + CRC
        assertEquals(48 + 24 + 48 + 4, b.length);
        assertEquals("KVSLBLK1", new String(b, 0, 8, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(1, buf.getInt(8));
        assertEquals(48, buf.getInt(12));
        assertEquals(BlockRecords.layoutFingerprint(LAYOUT), buf.getLong(16));
        assertEquals(0, b[24]);   // K
        assertEquals(0, b[25]);   // one table
        assertEquals(2, buf.getInt(28));
        assertEquals(1, buf.getInt(32));
        assertEquals(3, buf.getInt(36));
        assertEquals(b.length, buf.getLong(40));
        assertEquals(100, buf.getLong(48));
        assertEquals(103, buf.getLong(56));
        assertEquals(106, buf.getLong(64));
        assertArrayEquals(r.rows(), Arrays.copyOfRange(b, 72, 72 + 48));
        assertEquals(crc(b, 0, b.length - 4), buf.getInt(b.length - 4));
    }

    @Test
    void rowsOffsetAddressesEachTableAndPart() {
        BlockRecord r = everyTable();
        long table = LAYOUT.tokensPerBlock() * LAYOUT.rowBytes();
        // layer 1, KV head 1 is table 3; its V rows are the second part
        assertEquals((3 * 2 + 1) * table, BlockRecords.rowsOffset(LAYOUT, r, 1, 1, false));
        assertEquals(0, BlockRecords.rowsOffset(LAYOUT, r, 0, 0, true));
        assertEquals(0, BlockRecords.rowsOffset(LAYOUT, oneTable(2), 2, 1, true));
        assertThrows(KvArgumentException.class, () -> BlockRecords.rowsOffset(LAYOUT, oneTable(2), 2, 1, false));
        assertThrows(KvArgumentException.class, () -> BlockRecords.rowsOffset(LAYOUT, oneTable(2), 1, 1, true));
    }

    @Test
    void theFingerprintSeparatesEveryLayoutField() {
        long base = BlockRecords.layoutFingerprint(LAYOUT);
        assertEquals(base, BlockRecords.layoutFingerprint(new KvLayout(3, 4, 2, 8, DType.F16, 4)));
        KvLayout[] others = {new KvLayout(4, 4, 2, 8, DType.F16, 4), new KvLayout(3, 8, 2, 8, DType.F16, 4),
                new KvLayout(3, 4, 4, 8, DType.F16, 4), new KvLayout(3, 4, 2, 16, DType.F16, 4),
                new KvLayout(3, 4, 2, 8, DType.BF16, 4), new KvLayout(3, 4, 2, 8, DType.F16, 8)};
        for (KvLayout o : others) {
            assertNotEquals(base, BlockRecords.layoutFingerprint(o), o.toString());
        }
    }

    @Test
    void everyTruncationIsRejected() {
        byte[] b = BlockRecords.encode(LAYOUT, oneTable(3));
        for (int len = 0; len < b.length; len++) {
            Reason why = rejected(Arrays.copyOf(b, len));
            assertTrue(why == Reason.TRUNCATED || why == Reason.LENGTH_MISMATCH, len + " bytes: " + why);
        }
        assertEquals(Reason.LENGTH_MISMATCH, rejected(Arrays.copyOf(b, b.length + 1)));
    }

    @Test
    void everySingleBitFlipIsRejected() {
        byte[] good = BlockRecords.encode(LAYOUT, oneTable(2));
        for (int bit = 0; bit < good.length * 8; bit++) {
            byte[] b = good.clone();
            b[bit / 8] ^= (byte) (1 << (bit % 8));
            Reason why = rejected(b);
            if (bit / 8 >= 8 && bit / 8 < 12) {
                assertEquals(Reason.UNSUPPORTED_VERSION, why, "bit " + bit);
            } else if (bit / 8 >= 40 && bit / 8 < 48) {
                assertEquals(Reason.LENGTH_MISMATCH, why, "bit " + bit);
            } else if (bit / 8 < 8) {
                assertEquals(Reason.BAD_MAGIC, why, "bit " + bit);
            } else {
                assertEquals(Reason.CHECKSUM_MISMATCH, why, "bit " + bit);
            }
        }
    }

    @Test
    void anotherLayoutsRecordIsRejectedByFingerprint() {
        KvLayout other = new KvLayout(3, 4, 2, 8, DType.BF16, 4);
        byte[] b = BlockRecords.encode(other, new BlockRecord(BlockRecord.Kind.VALUES, 0, 0, new long[] {1},
                new byte[(int) other.rowBytes()]));
        TierRecordException e = assertThrows(TierRecordException.class, () -> BlockRecords.decode(LAYOUT, KEY, b));
        assertEquals(Reason.LAYOUT_MISMATCH, e.reason());
        assertEquals(KEY, e.key());
        assertTrue(e.getMessage().contains(KEY.hex()), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(names = {"HUGE_ROWS", "NEGATIVE_ROWS", "ZERO_ROWS", "LAYER_OUT_OF_RANGE", "NEGATIVE_HEAD",
            "KIND", "SCOPE", "SCOPE_ALL_WITH_TABLE", "RESERVED", "HEADER_SIZE"})
    void headerFieldsOutOfRangeAreRejectedBeforeAnyAllocation(Crafted c) {
        byte[] b = BlockRecords.encode(LAYOUT, oneTable(2));
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        switch (c) {
            case HUGE_ROWS -> buf.putInt(36, Integer.MAX_VALUE);
            case NEGATIVE_ROWS -> buf.putInt(36, -5);
            case ZERO_ROWS -> buf.putInt(36, 0);
            case LAYER_OUT_OF_RANGE -> buf.putInt(28, 3);
            case NEGATIVE_HEAD -> buf.putInt(32, -1);
            case KIND -> b[24] = 7;
            case SCOPE -> b[25] = 2;
            case SCOPE_ALL_WITH_TABLE -> b[25] = 1;
            case RESERVED -> b[27] = 1;
            case HEADER_SIZE -> buf.putInt(12, 1 << 30);
        }
        TierRecordException e = assertThrows(TierRecordException.class,
                () -> BlockRecords.decode(LAYOUT, KEY, resealed(b)));
        assertEquals(Reason.BAD_HEADER, e.reason(), e.getMessage());
    }

    enum Crafted { HUGE_ROWS, NEGATIVE_ROWS, ZERO_ROWS, LAYER_OUT_OF_RANGE, NEGATIVE_HEAD, KIND, SCOPE,
        SCOPE_ALL_WITH_TABLE, RESERVED, HEADER_SIZE }

    @Test
    void aRowCountThatDisagreesWithTheLengthIsRejected() {
        byte[] b = BlockRecords.encode(LAYOUT, oneTable(2));
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(36, 1);   // in range, but the record holds 2
        assertEquals(Reason.BAD_HEADER, rejected(resealed(b)));
    }

    @Test
    void aHugeDeclaredLengthIsRejectedWithoutAllocating() {
        byte[] b = BlockRecords.encode(LAYOUT, oneTable(2));
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(40, Long.MAX_VALUE);
        assertEquals(Reason.LENGTH_MISMATCH, rejected(resealed(b)));
    }

    @Test
    void badPositionsAreRejected() {
        for (long[] p : new long[][] {{5, 5}, {7, 6}, {-1, 3}}) {
            byte[] b = BlockRecords.encode(LAYOUT, oneTable(2));
            ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            buf.putLong(48, p[0]).putLong(56, p[1]);
            assertEquals(Reason.BAD_POSITIONS, rejected(resealed(b)), Arrays.toString(p));
        }
    }

    @Test
    void nonFiniteRowsAreNotEncoded() {
        for (short bits : new short[] {0x7e00, 0x7c00, (short) 0xfc00}) {   // NaN, +inf, -inf in f16
            BlockRecord r = oneTable(2);
            r.rows()[2 * 11] = (byte) bits;                                 // element 11 of the rows
            r.rows()[2 * 11 + 1] = (byte) (bits >> 8);
            TierRecordException e = assertThrows(TierRecordException.class, () -> BlockRecords.encode(LAYOUT, r));
            assertEquals(Reason.NON_FINITE_VALUE, e.reason());
            assertTrue(e.getMessage().contains("element 11 of the K rows"), e.getMessage());
        }
    }

    @Test
    void nonFiniteRowsAreRejectedEvenWithAValidChecksum() {
        for (short bits : new short[] {0x7e00, 0x7c00, (short) 0xfc00}) {   // NaN, +inf, -inf in f16
            byte[] b = BlockRecords.encode(LAYOUT, oneTable(2));
            int at = 48 + 16 + 2 * 11;   // element 11 of the rows
            b[at] = (byte) bits;
            b[at + 1] = (byte) (bits >> 8);
            TierRecordException e = assertThrows(TierRecordException.class,
                    () -> BlockRecords.decode(LAYOUT, KEY, resealed(b)));
            assertEquals(Reason.NON_FINITE_VALUE, e.reason());
            assertTrue(e.getMessage().contains("element 11"), e.getMessage());
        }
    }

    @Test
    void anIntactRecordOfOtherContentIsUnexpected() {
        BlockRecord d = BlockRecords.decode(LAYOUT, KEY, BlockRecords.encode(LAYOUT, oneTable(2)));
        assertEquals(Reason.UNEXPECTED_CONTENT, assertThrows(TierRecordException.class,
                () -> BlockRecords.expect(d, KEY, BlockRecord.Kind.VALUES, 2, 1, d.positions())).reason());
        assertEquals(Reason.UNEXPECTED_CONTENT, assertThrows(TierRecordException.class,
                () -> BlockRecords.expect(d, KEY, BlockRecord.Kind.KEYS, 1, 1, d.positions())).reason());
        assertEquals(Reason.UNEXPECTED_CONTENT, assertThrows(TierRecordException.class,
                () -> BlockRecords.expect(d, KEY, BlockRecord.Kind.KEYS, 2, 1, new long[] {100, 104})).reason());
    }

    @Test
    void nullAndGarbageAreTyped() {
        assertEquals(Reason.MISSING, assertThrows(TierRecordException.class,
                () -> BlockRecords.decode(LAYOUT, null, null)).reason());
        byte[] garbage = new byte[4096];
        new Random(3).nextBytes(garbage);
        assertEquals(Reason.BAD_MAGIC, rejected(garbage));
    }

    @Test
    void encodingRefusesRecordsThatDoNotFitTheLayout() {
        long[] p = {1, 2};
        byte[] rows = new byte[(int) (2 * LAYOUT.rowBytes())];
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, 3, 0, p, rows)));
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, BlockRecord.ALL, 0, p, rows)));
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, 0, 0, p, new byte[rows.length - 1])));
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, 0, 0, new long[] {2, 1}, rows)));
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, 0, 0, new long[5], new byte[(int) (5 * LAYOUT.rowBytes())])));
        assertThrows(KvArgumentException.class, () -> BlockRecords.encode(LAYOUT,
                new BlockRecord(BlockRecord.Kind.KEYS, 0, 0, new long[0], new byte[0])));
    }
}
