package io.kvslab.bench.model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A model or tokenizer file memory-mapped read-only, read little-endian through a cursor. Every read checks the bounds
 * first and reports a short file as a {@link ModelFormatException} naming the file, the offset and what was being read,
 * so a truncated file can never turn into a JVM fault or a silent wrong answer.
 */
final class ModelFile implements AutoCloseable {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private long pos;

    private ModelFile(Path path, Arena arena, MemorySegment data) {
        this.path = path;
        this.arena = arena;
        this.data = data;
    }

    static ModelFile open(Path path) {
        Arena arena = Arena.ofConfined();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new ModelFile(path, arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException(path, "no such file");
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        }
    }

    Path path() {
        return path;
    }

    long size() {
        return data.byteSize();
    }

    long position() {
        return pos;
    }

    void seek(long offset) {
        if (offset < 0 || offset > size()) {
            throw new ModelFormatException(path, "offset " + offset + " lies outside the file (" + size() + " bytes)");
        }
        pos = offset;
    }

    /** Fails unless {@code bytes} more bytes exist at the cursor. */
    void need(long bytes, String what) {
        if (bytes < 0 || pos + bytes > size() || pos + bytes < 0) {
            throw new ModelFormatException(path, "file ends (" + size() + " bytes) before " + what + " (needs "
                    + bytes + " bytes at offset " + pos + "); the file is truncated or corrupt");
        }
    }

    int i32(String what) {
        need(4, what);
        int v = data.get(I32, pos);
        pos += 4;
        return v;
    }

    long i64(String what) {
        need(8, what);
        long v = data.get(I64, pos);
        pos += 8;
        return v;
    }

    short i16(String what) {
        need(2, what);
        short v = data.get(I16, pos);
        pos += 2;
        return v;
    }

    byte i8(String what) {
        need(1, what);
        return data.get(ValueLayout.JAVA_BYTE, pos++);
    }

    float f32(String what) {
        need(4, what);
        float v = data.get(F32, pos);
        pos += 4;
        return v;
    }

    double f64(String what) {
        need(8, what);
        double v = data.get(F64, pos);
        pos += 8;
        return v;
    }

    byte[] bytes(long n, String what) {
        if (n > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " claims " + n + " bytes, more than this reader supports");
        }
        need(n, what);
        byte[] b = new byte[(int) n];
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, pos, b, 0, (int) n);
        pos += n;
        return b;
    }

    /** {@code count} float32 values at the cursor; rejects NaN and infinities (a corrupt weight must not go unnoticed). */
    float[] floats(long count, String what) {
        if (count > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " has " + count + " elements, more than a Java array holds");
        }
        need(count * 4, what);
        float[] a = new float[(int) count];
        MemorySegment.copy(data, F32, pos, a, 0, (int) count);
        pos += count * 4;
        requireFinite(a, what);
        return a;
    }

    /** {@code count} IEEE half-precision values at the cursor, widened to float. */
    float[] halfs(long count, String what) {
        if (count > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " has " + count + " elements, more than a Java array holds");
        }
        need(count * 2, what);
        float[] a = new float[(int) count];
        for (int i = 0; i < a.length; i++) {
            a[i] = Float.float16ToFloat(data.get(I16, pos + 2L * i));
        }
        pos += count * 2;
        requireFinite(a, what);
        return a;
    }

    /** {@code count} bfloat16 values at the cursor (the high half of a float32), widened to float. */
    float[] bfloats(long count, String what) {
        if (count > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " has " + count + " elements, more than a Java array holds");
        }
        need(count * 2, what);
        float[] a = new float[(int) count];
        for (int i = 0; i < a.length; i++) {
            a[i] = Float.intBitsToFloat((data.get(I16, pos + 2L * i) & 0xFFFF) << 16);
        }
        pos += count * 2;
        requireFinite(a, what);
        return a;
    }

    /**
     * {@code count} values stored as GGML Q8_0: blocks of 32, each an f16 scale then 32 signed bytes; value = scale * q.
     * {@code count} must be a multiple of 32 (the caller checks the row length).
     */
    float[] q8_0(long count, String what) {
        if (count > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(path, what + " has " + count + " elements, more than a Java array holds");
        }
        long blocks = count / 32;
        need(blocks * 34, what);
        float[] a = new float[(int) count];
        for (long b = 0; b < blocks; b++) {
            long base = pos + b * 34;
            float d = Float.float16ToFloat(data.get(I16, base));
            for (int i = 0; i < 32; i++) {
                a[(int) (b * 32 + i)] = d * data.get(ValueLayout.JAVA_BYTE, base + 2 + i);
            }
        }
        pos += blocks * 34;
        requireFinite(a, what);
        return a;
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
        arena.close();
    }
}
