package io.kvslab.bench.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The fields of a GGUF v3 file (the GGUF specification, read independently of the project's loader): header counts,
 * every metadata key length, type, string length, array element type and length, scalar value, and per tensor its
 * name length, dimension count, dimensions, type and data offset. Also the tensors' byte ranges of any file it can
 * walk, for the no-aliasing oracle.
 */
final class GgufStructure {
    static final int ALIGNMENT = 32;

    private GgufStructure() {}

    /** A tensor's place in the file (absolute offset), by the format's own rules; {@code bytes} -1 for a type without a size here. */
    record TensorRange(String name, long offset, long bytes) {}

    /** Parses a valid GGUF; throws IllegalArgumentException if it cannot be walked (seeds must be valid). */
    static Structure parse(String name, byte[] b) {
        List<Field> fields = new ArrayList<>();
        List<List<Field>> products = new ArrayList<>();
        List<Field> tensorOffsets = new ArrayList<>();
        Walker w = new Walker(b);
        fields.add(new Field("magic", 0, 4, FieldKind.ENUM));
        fields.add(new Field("version", 4, 4, FieldKind.ENUM));
        Field tensorCount = new Field("tensorCount", 8, 8, FieldKind.COUNT);
        Field kvCount = new Field("kvCount", 16, 8, FieldKind.COUNT);
        fields.add(tensorCount);
        fields.add(kvCount);
        w.pos = 24;
        long nTensors = tensorCount.read(b);
        long nKv = kvCount.read(b);
        List<Field> dims = new ArrayList<>();
        for (long i = 0; i < nKv; i++) {
            fields.add(new Field("kv[" + i + "].keyLength", w.pos, 8, FieldKind.SIZE));
            String key = w.string();
            fields.add(new Field(key + ".type", w.pos, 4, FieldKind.ENUM));
            int type = w.i32();
            walkValue(w, type, key, fields, dims);
        }
        if (dims.size() >= 2) {
            products.add(List.copyOf(dims));
        }
        for (long i = 0; i < nTensors; i++) {
            fields.add(new Field("tensor[" + i + "].nameLength", w.pos, 8, FieldKind.SIZE));
            String tn = w.string();
            fields.add(new Field(tn + ".nDims", w.pos, 4, FieldKind.COUNT));
            int nd = w.i32();
            List<Field> td = new ArrayList<>();
            for (int d = 0; d < nd; d++) {
                Field f = new Field(tn + ".dim[" + d + "]", w.pos, 8, FieldKind.DIM);
                fields.add(f);
                td.add(f);
                w.i64();
            }
            products.add(List.copyOf(td));
            fields.add(new Field(tn + ".type", w.pos, 4, FieldKind.ENUM));
            w.i32();
            Field off = new Field(tn + ".offset", w.pos, 8, FieldKind.OFFSET);
            fields.add(off);
            tensorOffsets.add(off);
            w.i64();
        }
        List<List<Field>> offsets = tensorOffsets.isEmpty() ? List.of() : List.of(List.copyOf(tensorOffsets));
        return new Structure(name, b, List.copyOf(fields), List.copyOf(products), offsets, ALIGNMENT);
    }

    private static void walkValue(Walker w, int type, String key, List<Field> fields, List<Field> dims) {
        switch (type) {
            case 0, 1, 7 -> w.pos += 1;
            case 2, 3 -> w.pos += 2;
            case 4, 5 -> {
                // integer metadata of a llama model are sizes (embedding_length, block_count ...): attack them as DIMs
                Field f = new Field(key, w.pos, 4, key.startsWith("tokenizer.") ? FieldKind.VALUE : FieldKind.DIM);
                fields.add(f);
                if (f.kind() == FieldKind.DIM) {
                    dims.add(f);
                }
                w.pos += 4;
            }
            case 6 -> w.pos += 4;
            case 10, 11, 12 -> w.pos += 8;
            case 8 -> {
                fields.add(new Field(key + ".length", w.pos, 8, FieldKind.SIZE));
                w.string();
            }
            case 9 -> {
                fields.add(new Field(key + ".elementType", w.pos, 4, FieldKind.ENUM));
                int et = w.i32();
                fields.add(new Field(key + ".count", w.pos, 8, FieldKind.COUNT));
                long n = w.i64();
                for (long i = 0; i < n; i++) {
                    if (et == 8) {
                        // string elements: only the first few lengths are worth a field each
                        if (i < 4) {
                            fields.add(new Field(key + "[" + i + "].length", w.pos, 8, FieldKind.SIZE));
                        }
                        w.string();
                    } else {
                        walkValue(w, et, key + "[" + i + "]", new ArrayList<>(), new ArrayList<>());
                    }
                }
            }
            default -> throw new IllegalArgumentException("GGUF value type " + type + " of " + key);
        }
    }

    /**
     * The tensors of any GGUF this walk can follow, with their absolute byte ranges (the data section starts at the
     * directory's end rounded up to 32), or null if the file cannot be walked. Byte sizes are known for F32, F16, BF16 and Q8_0 (others get -1).
     */
    static List<TensorRange> tensorRanges(byte[] b) {
        try {
            Walker w = new Walker(b);
            w.pos = 8;
            long nTensors = w.i64();
            long nKv = w.i64();
            if (nTensors < 0 || nKv < 0 || nTensors > b.length || nKv > b.length) {
                return null;
            }
            for (long i = 0; i < nKv; i++) {
                w.string();
                walkValue(w, w.i32(), "k", new ArrayList<>(), new ArrayList<>());
            }
            List<TensorRange> raw = new ArrayList<>();
            for (long i = 0; i < nTensors; i++) {
                String name = w.string();
                int nd = w.i32();
                if (nd < 1 || nd > 4) {
                    return null;
                }
                long elements = 1;
                for (int d = 0; d < nd; d++) {
                    elements = Math.multiplyExact(elements, w.i64());
                }
                int type = w.i32();
                long off = w.i64();
                long bytes = switch (type) {
                    case 0 -> Math.multiplyExact(elements, 4);
                    case 1, 30 -> Math.multiplyExact(elements, 2);
                    case 8 -> Math.multiplyExact(elements / 32, 34);
                    default -> -1;
                };
                raw.add(new TensorRange(name, off, bytes));
            }
            long dataStart = dataStart(w.pos);
            List<TensorRange> out = new ArrayList<>();
            for (TensorRange r : raw) {
                out.add(new TensorRange(r.name(), Math.addExact(dataStart, r.offset()), r.bytes()));
            }
            return out;
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Data-section start of a GGUF whose directory ends at {@code directoryEnd}. */
    static long dataStart(long directoryEnd) {
        return (directoryEnd + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /**
     * What is wrong with the placement of a loaded file's tensors (overlapping each other or reaching past the end of
     * the file), or null when nothing is (or when the file cannot be walked).
     */
    static String placementProblem(byte[] b) {
        List<TensorRange> ranges = tensorRanges(b);
        if (ranges == null) {
            return null;
        }
        List<TensorRange> sized = new ArrayList<>();
        for (TensorRange r : ranges) {
            if (r.bytes() >= 0) {
                if (r.offset() < 0 || r.offset() > b.length || r.bytes() > b.length - r.offset()) {
                    return "tensor " + r.name() + " [" + r.offset() + ", +" + r.bytes() + ") lies outside the "
                            + b.length + "-byte file";
                }
                sized.add(r);
            }
        }
        sized.sort(Comparator.comparingLong(TensorRange::offset));
        for (int i = 1; i < sized.size(); i++) {
            TensorRange p = sized.get(i - 1);
            TensorRange t = sized.get(i);
            if (t.offset() < p.offset() + p.bytes()) {
                return "tensors " + p.name() + " [" + p.offset() + ", +" + p.bytes() + ") and " + t.name() + " ["
                        + t.offset() + ", +" + t.bytes() + ") overlap";
            }
        }
        return null;
    }

    /** Little-endian cursor over a byte array; reading past the end throws (callers treat it as "cannot walk"). */
    private static final class Walker {
        private final ByteBuffer buf;
        int pos;

        Walker(byte[] b) {
            buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        }

        int i32() {
            int v = buf.getInt(pos);
            pos += 4;
            return v;
        }

        long i64() {
            long v = buf.getLong(pos);
            pos += 8;
            return v;
        }

        String string() {
            long n = i64();
            if (n < 0 || n > buf.capacity() - pos) {
                throw new IllegalArgumentException("string length " + n);
            }
            String s = new String(buf.array(), pos, (int) n, StandardCharsets.UTF_8);
            pos += (int) n;
            return s;
        }
    }
}
