package io.kvslab.snapshot;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A snapshot file read with positional {@link FileChannel} reads, never through a memory map: a file that another
 * process truncates or rewrites while it is read yields short reads, reported as a
 * {@link SnapshotException.Reason#CORRUPT} SnapshotException, where a mapped read would fault (SIGBUS, surfacing as
 * {@code java.lang.InternalError}). The size is taken once, at open; every read is checked against it and against
 * what the file still holds.
 */
final class SnapshotInput implements AutoCloseable {
    private final String file;
    private final FileChannel channel;
    private final long size;

    private SnapshotInput(String file, FileChannel channel, long size) {
        this.file = file;
        this.channel = channel;
        this.size = size;
    }

    static SnapshotInput open(Path path) {
        String file = path.toString();
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw SnapshotException.io("snapshot " + file + " does not exist", e);
        } catch (IOException | UnsupportedOperationException e) {
            throw SnapshotException.io("cannot read snapshot " + file + ": " + e, e);
        }
        try {
            return new SnapshotInput(file, ch, ch.size());
        } catch (IOException e) {
            closeQuietly(ch);
            throw SnapshotException.io("cannot read snapshot " + file + ": " + e, e);
        }
    }

    String file() {
        return file;
    }

    /** The file's size when it was opened. */
    long size() {
        return size;
    }

    /** Reads exactly {@code len} bytes at {@code offset} into {@code dst[0, len)}. */
    void readFully(long offset, byte[] dst, int len) {
        if (offset < 0 || len < 0 || len > dst.length || offset > size - len) {
            throw SnapshotException.corrupt("snapshot " + file + ": " + len + " bytes at offset " + offset
                    + " lie outside the file's " + size + " bytes");
        }
        ByteBuffer buf = ByteBuffer.wrap(dst, 0, len);
        try {
            while (buf.hasRemaining()) {
                int n = channel.read(buf, offset + buf.position());
                if (n < 0) {
                    throw SnapshotException.corrupt("snapshot " + file + " is truncated: " + len + " bytes at "
                            + offset + " requested, the file ended after " + buf.position() + " of them (it was "
                            + size + " bytes when opened; was it truncated or replaced while being read?)");
                }
            }
        } catch (ClosedChannelException e) {
            throw SnapshotException.io("snapshot " + file + ": the file was closed while being read "
                    + "(the reading thread was interrupted?)", e);
        } catch (IOException e) {
            throw SnapshotException.io("snapshot " + file + ": cannot read " + len + " bytes at " + offset + ": " + e, e);
        }
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // read-only: nothing to lose
        }
    }
}
