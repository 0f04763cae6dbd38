package io.kvslab.snapshot;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reads little-endian values from one section {@code [start, end)} of a snapshot through a small window;
 * reading past the section's end is a {@link SnapshotException.Reason#CORRUPT} SnapshotException, never an out-of-bounds access.
 */
final class SectionInput {
    private static final int WINDOW = 64 * 1024;

    private final SnapshotInput in;
    private final String file;
    private final String section;
    private final long end;
    private final byte[] window = new byte[WINDOW];
    private final ByteBuffer buf = ByteBuffer.wrap(window).order(ByteOrder.LITTLE_ENDIAN);
    /** File offset of window[0]. */
    private long windowStart;

    SectionInput(SnapshotInput in, String section, long start, long end) {
        this.in = in;
        this.file = in.file();
        this.section = section;
        this.end = end;
        this.windowStart = start;
        buf.limit(0);
    }

    /** File offset of the next value. */
    long position() {
        return windowStart + buf.position();
    }

    /** Bytes left in the section. */
    long remaining() {
        return end - position();
    }

    byte getByte() {
        need(1);
        return buf.get();
    }

    int getInt() {
        need(4);
        return buf.getInt();
    }

    long getLong() {
        need(8);
        return buf.getLong();
    }

    void skip(int n) {
        need(n);
        buf.position(buf.position() + n);
    }

    private void need(int n) {
        if (buf.remaining() >= n) {
            return;
        }
        long pos = position();
        if (end - pos < n) {
            throw SnapshotException.corrupt("snapshot " + file + ": the " + section + " ends at byte " + end
                    + " but a field at byte " + pos + " needs " + n + " more bytes");
        }
        int len = (int) Math.min(WINDOW, end - pos);
        in.readFully(pos, window, len);
        windowStart = pos;
        buf.position(0).limit(len);
    }
}
