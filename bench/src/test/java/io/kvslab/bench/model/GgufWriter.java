package io.kvslab.bench.model;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Writes small GGUF v3 files for tests (the format as the GGUF spec defines it, written independently of the reader). */
final class GgufWriter {
    /** {@code offset} null: placed after the previous tensor; else the directory claims this offset (data may be empty). */
    private record Tensor(String name, long[] dims, int type, byte[] data, Long offset) {}

    private final ByteArrayOutputStream meta = new ByteArrayOutputStream();
    private int kvCount;
    private final List<Tensor> tensors = new ArrayList<>();
    private int version = 3;
    private int magic = GgufFile.MAGIC;
    private byte[] trailing = new byte[0];

    GgufWriter version(int v) {
        version = v;
        return this;
    }

    GgufWriter magic(int m) {
        magic = m;
        return this;
    }

    private static byte[] le(int bytes, java.util.function.Consumer<ByteBuffer> fill) {
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        fill.accept(b);
        return b.array();
    }

    private void str(ByteArrayOutputStream out, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(le(8, x -> x.putLong(b.length)));
        out.writeBytes(b);
    }

    private void key(String k, int type) {
        str(meta, k);
        meta.writeBytes(le(4, x -> x.putInt(type)));
        kvCount++;
    }

    GgufWriter string(String k, String v) {
        key(k, 8);
        str(meta, v);
        return this;
    }

    GgufWriter u32(String k, int v) {
        key(k, 4);
        meta.writeBytes(le(4, x -> x.putInt(v)));
        return this;
    }

    GgufWriter f32(String k, float v) {
        key(k, 6);
        meta.writeBytes(le(4, x -> x.putFloat(v)));
        return this;
    }

    GgufWriter strings(String k, List<String> v) {
        key(k, 9);
        meta.writeBytes(le(12, x -> x.putInt(8).putLong(v.size())));
        for (String s : v) {
            str(meta, s);
        }
        return this;
    }

    GgufWriter floats(String k, float[] v) {
        key(k, 9);
        meta.writeBytes(le(12, x -> x.putInt(6).putLong(v.length)));
        for (float f : v) {
            meta.writeBytes(le(4, x -> x.putFloat(f)));
        }
        return this;
    }

    GgufWriter ints(String k, int[] v) {
        key(k, 9);
        meta.writeBytes(le(12, x -> x.putInt(5).putLong(v.length)));
        for (int i : v) {
            meta.writeBytes(le(4, x -> x.putInt(i)));
        }
        return this;
    }

    /** An array of {@code n} elements of GGUF type {@code elemType}, whose encoded elements are {@code payload}. */
    GgufWriter array(String k, int elemType, long n, byte[] payload) {
        key(k, 9);
        meta.writeBytes(le(12, x -> x.putInt(elemType).putLong(n)));
        meta.writeBytes(payload);
        return this;
    }

    GgufWriter tensor(String name, long[] dims, int type, byte[] data) {
        tensors.add(new Tensor(name, dims, type, data, null));
        return this;
    }

    /** A directory entry claiming data offset {@code offset} (relative to the data section), with no data of its own. */
    GgufWriter tensorAt(String name, long[] dims, int type, long offset) {
        tensors.add(new Tensor(name, dims, type, new byte[0], offset));
        return this;
    }

    /** Bytes appended after the tensors' data (the bytes that {@link #tensorAt} entries point into). */
    GgufWriter trailingData(byte[] data) {
        trailing = data;
        return this;
    }

    /** A float32 tensor. */
    GgufWriter f32Tensor(String name, float[] v, long... dims) {
        return tensor(name, dims, 0, le(4 * v.length, x -> {
            for (float f : v) {
                x.putFloat(f);
            }
        }));
    }

    /** A float16 tensor of the values rounded to half precision. */
    GgufWriter f16Tensor(String name, float[] v, long... dims) {
        return tensor(name, dims, 1, le(2 * v.length, x -> {
            for (float f : v) {
                x.putShort(Float.floatToFloat16(f));
            }
        }));
    }

    /** A Q8_0 tensor: per block of 32, d = max|x| / 127 stored as f16, q = round(x / d). */
    GgufWriter q8Tensor(String name, float[] v, long... dims) {
        int blocks = v.length / 32;
        return tensor(name, dims, 8, le(34 * blocks, x -> {
            for (int b = 0; b < blocks; b++) {
                float amax = 0;
                for (int i = 0; i < 32; i++) {
                    amax = Math.max(amax, Math.abs(v[b * 32 + i]));
                }
                float d = amax / 127f;
                float id = d == 0 ? 0 : 1 / d;
                x.putShort(Float.floatToFloat16(d));
                for (int i = 0; i < 32; i++) {
                    x.put((byte) Math.round(v[b * 32 + i] * id));
                }
            }
        }));
    }

    byte[] build() {
        int alignment = 32;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(le(24, x -> x.putInt(magic).putInt(version).putLong(tensors.size()).putLong(kvCount)));
        out.writeBytes(meta.toByteArray());
        long offset = 0;
        List<Long> offsets = new ArrayList<>();
        for (Tensor t : tensors) {
            offsets.add(t.offset() != null ? t.offset() : offset);
            offset += (t.data().length + alignment - 1) / alignment * alignment;
        }
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            str(out, t.name());
            out.writeBytes(le(4, x -> x.putInt(t.dims().length)));
            for (long d : t.dims()) {
                out.writeBytes(le(8, x -> x.putLong(d)));
            }
            long off = offsets.get(i);
            out.writeBytes(le(12, x -> x.putInt(t.type()).putLong(off)));
        }
        while (out.size() % alignment != 0) {
            out.write(0);
        }
        for (Tensor t : tensors) {
            out.writeBytes(t.data());
            while (out.size() % alignment != 0) {
                out.write(0);
            }
        }
        out.writeBytes(trailing);
        return out.toByteArray();
    }
}
