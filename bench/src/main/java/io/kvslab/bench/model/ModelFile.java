package io.kvslab.bench.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * A model or tokenizer file read little-endian through a cursor, with positional {@link FileChannel} reads (never a
 * memory map: a file truncated or rewritten while it is loaded gives short reads, reported as a
 * {@link ModelFormatException}, where a mapped read would fault with SIGBUS / {@code InternalError}). Every read checks
 * the bounds first, against the size taken at open, and reports a short file as a {@link ModelFormatException} naming
 * the file, the offset and what was being read, so a truncated file can never turn into a JVM fault or a silent wrong
 * answer. Bulk reads ({@link #floats} ...) allocate only after the bytes they need were checked to exist.
 */
final class ModelFile implements AutoCloseable {
    /** Small values are read through a window of this many bytes; bulk reads go in chunks of the same size. */
    private static final int WINDOW = 64 * 1024;

    private final Path path;
    private final FileChannel channel;
    private final long size;
    private final ByteBuffer window = ByteBuffer.allocate(WINDOW).order(ByteOrder.LITTLE_ENDIAN);
    /** File offset of window[0]; the window holds [windowStart, windowStart + window.limit()). */
    private long windowStart;
    private long pos;

    private ModelFile(Path path, FileChannel channel, long size) {
        this.path = path;
        this.channel = channel;
        this.size = size;
        window.limit(0);
    }

    /**
     * Opens a regular file. Anything else is refused before it is opened: opening a FIFO for reading blocks until a
     * writer comes (forever, for a load), and a device such as {@code /dev/zero} has no size to check reads against.
     */
    static ModelFile open(Path path) {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(path, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path, "no such file");
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        }
        if (!attrs.isRegularFile()) {
            throw new ModelFormatException(path, (attrs.isDirectory() ? "is a directory"
                    : "is not a regular file (a FIFO, socket or device?)") + "; expected a model or tokenizer file");
        }
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(path, "no such file");
        } catch (IOException | UnsupportedOperationException e) {
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        }
        try {
            return new ModelFile(path, ch, ch.size());
        } catch (IOException e) {
            closeQuietly(ch);
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        }
    }

    Path path() {
        return path;
    }

    /** The file's size when it was opened. */
    long size() {
        return size;
    }

    long position() {
        return pos;
    }

    /** Bytes between the cursor and the end of the file. */
    long remaining() {
        return size - pos;
    }

    void seek(long offset) {
        if (offset < 0 || offset > size) {
            throw new ModelFormatException(path, "offset " + offset + " lies outside the file (" + size + " bytes)");
        }
        pos = offset;
    }

    /** Fails unless {@code bytes} more bytes exist at the cursor. */
    void need(long bytes, String what) {
        if (bytes < 0 || bytes > size - pos) {
            throw new ModelFormatException(path, "file ends (" + size + " bytes) before " + what + " (needs "
                    + bytes + " bytes at offset " + pos + "); the file is truncated or corrupt");
        }
    }

    /** The window positioned at the cursor with at least {@code n <= WINDOW} bytes, after {@link #need}. */
    private ByteBuffer at(int n, String what) {
        need(n, what);
        long rel = pos - windowStart;
        if (rel < 0 || rel + n > window.limit()) {
            windowStart = pos;
            window.clear();
            window.limit((int) Math.min(WINDOW, size - pos));
            fill(window, pos, what);
            window.flip();
            rel = 0;
        }
        window.position((int) rel);
        pos += n;
        return window;
    }

    /** Fills {@code buf} from its position to its limit with the bytes at {@code offset}. */
    private void fill(ByteBuffer buf, long offset, String what) {
        long at = offset;
        try {
            while (buf.hasRemaining()) {
                int n = channel.read(buf, at);
                if (n < 0) {
                    throw new ModelFormatException(path, "file ends at byte " + at + " while reading " + what
                            + ", but it had " + size + " bytes when opened; was it truncated or replaced while being "
                            + "loaded?");
                }
                at += n;
            }
        } catch (IOException e) {
            throw new ModelFormatException(path, "cannot read " + what + " at offset " + offset + ": " + e, e);
        }
    }

    int i32(String what) {
        return at(4, what).getInt();
    }

    long i64(String what) {
        return at(8, what).getLong();
    }

    short i16(String what) {
        return at(2, what).getShort();
    }

    byte i8(String what) {
        return at(1, what).get();
    }

    float f32(String what) {
        return at(4, what).getFloat();
    }

    double f64(String what) {
        return at(8, what).getDouble();
    }

    /**
     * Passes over {@code count} strings at the cursor (each an int64 length, then that many bytes), checking every
     * length against {@code maxLength} and the bytes left; returns their total length. Reads the lengths straight from
     * the window: an array of millions of short strings is skipped at the speed of the file, not of a call per element.
     *
     * @param array the array's name, for messages ({@code array[i] claims a length of ...})
     */
    long skipStrings(int count, long maxLength, String array) {
        long total = 0;
        String what = "the length of a string of array " + array;
        for (int i = 0; i < count; i++) {
            long rel = pos - windowStart;
            long len;
            if (rel >= 0 && rel + 8 <= window.limit()) {
                len = window.getLong((int) rel);
                pos += 8;
            } else {
                len = i64(what);
            }
            long allowed = Math.min(maxLength, size - pos);
            if (len < 0 || len > allowed) {
                throw new ModelFormatException(path, array + "[" + i + "] claims a length of " + len
                        + " bytes, allowed [0, " + allowed + "]; the file is corrupt");
            }
            pos += len;
            total += len;
        }
        return total;
    }

    byte[] bytes(long n, String what) {
        if (n > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " claims " + n + " bytes, more than this reader supports");
        }
        need(n, what);
        byte[] b = new byte[(int) n];
        if (n <= WINDOW) {
            at((int) n, what).get(b);   // short strings: served from the window, not one read each
            return b;
        }
        fill(ByteBuffer.wrap(b), pos, what);
        pos += n;
        return b;
    }

    /** Element-wise decoding of a bulk read: {@code src} holds whole elements. */
    @FunctionalInterface
    private interface Decoder {
        void decode(ByteBuffer src, float[] dst, int to, int elements);
    }

    /**
     * {@code count} elements of {@code bytesPerUnit} bytes per {@code elementsPerUnit} elements at the cursor, read in
     * chunks and decoded; the bytes are checked to exist before the array is allocated.
     */
    private float[] bulk(long count, int elementsPerUnit, int bytesPerUnit, String what, Decoder decoder) {
        if (count > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " has " + count + " elements, more than a Java array holds");
        }
        long units = count / elementsPerUnit;
        need(units * bytesPerUnit, what);   // units <= 2^31 and bytesPerUnit <= 34: no overflow
        float[] a = new float[(int) count];
        int unitsPerChunk = Math.max(1, WINDOW / bytesPerUnit);
        ByteBuffer chunk = ByteBuffer.allocate(unitsPerChunk * bytesPerUnit).order(ByteOrder.LITTLE_ENDIAN);
        long at = pos;
        for (long u = 0; u < units; ) {
            int n = (int) Math.min(unitsPerChunk, units - u);
            chunk.clear().limit(n * bytesPerUnit);
            fill(chunk, at, what);
            chunk.flip();
            decoder.decode(chunk, a, (int) (u * elementsPerUnit), n * elementsPerUnit);
            at += (long) n * bytesPerUnit;
            u += n;
        }
        pos = at;
        requireFinite(a, what);
        return a;
    }

    /** {@code count} float32 values at the cursor; rejects NaN and infinities (a corrupt weight must not go unnoticed). */
    float[] floats(long count, String what) {
        return bulk(count, 1, 4, what, (src, dst, to, n) -> src.asFloatBuffer().get(dst, to, n));
    }

    /** {@code count} IEEE half-precision values at the cursor, widened to float. */
    float[] halfs(long count, String what) {
        return bulk(count, 1, 2, what, (src, dst, to, n) -> {
            for (int i = 0; i < n; i++) {
                dst[to + i] = Float.float16ToFloat(src.getShort());
            }
        });
    }

    /** {@code count} bfloat16 values at the cursor (the high half of a float32), widened to float. */
    float[] bfloats(long count, String what) {
        return bulk(count, 1, 2, what, (src, dst, to, n) -> {
            for (int i = 0; i < n; i++) {
                dst[to + i] = BFloat16.toFloat(src.getShort());
            }
        });
    }

    /**
     * {@code count} values stored as GGML Q8_0: blocks of 32, each an f16 scale then 32 signed bytes; value = scale * q.
     * {@code count} must be a multiple of 32 (the caller checks the row length).
     */
    float[] q8_0(long count, String what) {
        return bulk(count, 32, 34, what, (src, dst, to, n) -> {
            for (int b = 0; b < n / 32; b++) {
                float d = Float.float16ToFloat(src.getShort());
                for (int i = 0; i < 32; i++) {
                    dst[to + b * 32 + i] = d * src.get();
                }
            }
        });
    }

    private void requireFinite(float[] a, String what) {
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                throw new ModelFormatException(path, what + " holds a non-finite value (" + a[i] + ") at element " + i
                        + "; weights must be finite numbers (is the file corrupt?)");
            }
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
