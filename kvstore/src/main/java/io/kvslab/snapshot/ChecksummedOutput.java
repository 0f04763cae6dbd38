package io.kvslab.snapshot;

import net.openhft.chronicle.bytes.MappedBytes;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Appends little-endian values of one section to a {@link MappedBytes} through a small staging buffer, keeping
 * the CRC32C of everything written; {@link #finish()} appends that CRC. Not thread-safe.
 */
final class ChecksummedOutput {
    private static final int BUFFER = 64 * 1024;

    private final MappedBytes out;
    private final byte[] staging = new byte[BUFFER];
    private final ByteBuffer buf = ByteBuffer.wrap(staging).order(ByteOrder.LITTLE_ENDIAN);
    private final CRC32C crc = new CRC32C();

    ChecksummedOutput(MappedBytes out) {
        this.out = out;
    }

    void putByte(byte v) {
        room(1);
        buf.put(v);
    }

    void putInt(int v) {
        room(4);
        buf.putInt(v);
    }

    void putLong(long v) {
        room(8);
        buf.putLong(v);
    }

    /** Flushes, appends the CRC32C of the section (not itself covered), returns it. */
    int finish() {
        flush();
        int value = (int) crc.getValue();
        byte[] tail = new byte[SnapshotFormat.CRC_BYTES];
        ByteBuffer.wrap(tail).order(ByteOrder.LITTLE_ENDIAN).putInt(value);
        out.write(tail, 0, tail.length);
        return value;
    }

    private void room(int n) {
        if (buf.remaining() < n) {
            flush();
        }
    }

    private void flush() {
        int n = buf.position();
        if (n > 0) {
            crc.update(staging, 0, n);
            out.write(staging, 0, n);
            buf.clear();
        }
    }
}
