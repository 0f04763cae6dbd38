package io.kvslab.bench.model;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The header of a GGUF v2/v3 file (llama.cpp's format): metadata key/values, the tensor directory and the start of the
 * aligned data section. Tensor data is read on demand through {@link #readTensor}, which converts F32, F16, BF16 and
 * Q8_0 to float32 and rejects every other tensor type by name.
 *
 * <p><b>Bounds.</b> A hostile file must not make the parser or the loader allocate more than a small multiple of its own
 * length. Every count and length is bounded, before anything is allocated for it, by the bytes left in the file (each
 * metadata entry, array element and tensor entry has a minimum encoded size) and by the maxima below; every tensor has a
 * known GGML type, a byte size computed in long with overflow checks, and lies inside the data section without
 * overlapping another tensor, so the tensors together are at most the file's length.
 *
 * <p>Metadata arrays are the one place where a small file could claim a great deal of heap (millions of elements, each
 * a boxed object): only the arrays the loader reads ({@link #READ_ARRAYS}) are read, into primitive arrays, and all of
 * them together may take at most the file's length + 1 MiB of heap; every other array is checked and skipped.
 *
 * <p>Metadata values map to Java as: integers of up to 32 bits to {@code Long} (unsigned ones keep their value),
 * 64-bit integers to {@code Long}, FLOAT32 to {@code Float}, FLOAT64 to {@code Double}, BOOL to {@code Boolean},
 * STRING to {@code String}, ARRAY to an {@link Array}.
 */
final class GgufFile {
    static final int MAGIC = 0x46554747; // "GGUF" little-endian
    static final int DEFAULT_ALIGNMENT = 32;
    private static final int MAX_DIMS = 4;
    static final long MAX_TENSORS = 1 << 20;
    static final long MAX_METADATA = 1 << 20;
    static final long MAX_ARRAY_ELEMENTS = 1 << 22;
    /** Keys and tensor names; values (chat templates ...) may be longer. */
    static final long MAX_NAME_BYTES = 1 << 16;
    static final long MAX_STRING_BYTES = 1 << 24;
    static final long MAX_ALIGNMENT = 1 << 20;
    /** Smallest encoded tensor entry: name length, no name bytes, 1 dimension, one size, type, offset. */
    private static final int MIN_TENSOR_ENTRY = 8 + 4 + 8 + 4 + 8;
    /** Smallest encoded metadata entry: key length, no key bytes, type, a one-byte value. */
    private static final int MIN_METADATA_ENTRY = 8 + 4 + 1;

    /**
     * A tensor directory entry: {@code dims[0]} is the fastest-varying (row length); {@code bytes} its size in the data
     * section, {@code offset} its start relative to the data section.
     */
    record TensorInfo(String name, long[] dims, int typeId, long offset, long bytes) {
        GgmlType type() {
            return GgmlType.of(typeId);
        }

        long elements() {
            long n = 1;
            for (long d : dims) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        String shape() {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < dims.length; i++) {
                sb.append(i == 0 ? "" : ", ").append(dims[i]);
            }
            return sb.append(']').toString();
        }
    }

    /**
     * The arrays the loader reads ({@link GgufModelLoader}'s tokenizer); every other array is validated and skipped.
     */
    static final Set<String> READ_ARRAYS = Set.of("tokenizer.ggml.tokens", "tokenizer.ggml.scores");

    /**
     * A metadata array: its GGUF element type, its length and, for the keys of {@link #READ_ARRAYS}, its values:
     * {@code long[]} for integers (unsigned ones keep their value), {@code float[]} for float32, {@code double[]} for
     * float64, {@code boolean[]} for bool and a {@link StringArray} for strings. Null for an array that was skipped.
     */
    record Array(int elementType, int length, Object values) {
        String describe() {
            return "an array of " + length + " " + typeName(elementType) + (values == null ? " (not read)" : "");
        }

        @Override
        public String toString() {
            return describe();
        }
    }

    /** Strings packed one after another in {@code utf8}: string i is bytes {@code [offsets[i], offsets[i+1])}. */
    record StringArray(byte[] utf8, int[] offsets) {
        int size() {
            return offsets.length - 1;
        }

        byte[] bytes(int i) {
            return java.util.Arrays.copyOfRange(utf8, offsets[i], offsets[i + 1]);
        }

        String get(int i) {
            return new String(utf8, offsets[i], offsets[i + 1] - offsets[i], StandardCharsets.UTF_8);
        }
    }

    private final ModelFile file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, TensorInfo> tensors;
    private final long dataStart;

    private GgufFile(ModelFile file, int version, Map<String, Object> metadata, Map<String, TensorInfo> tensors, long dataStart) {
        this.file = file;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.dataStart = dataStart;
    }

    /** Parses the header of an open file; the caller keeps ownership of {@code f}. */
    static GgufFile parse(ModelFile f) {
        f.seek(0);
        int magic = f.i32("the GGUF magic");
        if (magic != MAGIC) {
            throw new ModelFormatException(f.path(), String.format("starts with 0x%08x, not the GGUF magic \"GGUF\"", magic));
        }
        int version = f.i32("the GGUF version");
        if (version != 2 && version != 3) {
            throw new ModelFormatException(f.path(), "GGUF version " + version + " is not supported; expected 2 or 3");
        }
        long tensorCount = f.i64("the tensor count");
        long kvCount = f.i64("the metadata count");
        long left = f.remaining();
        count(f, "tensor count", tensorCount, Math.min(MAX_TENSORS, left / MIN_TENSOR_ENTRY));
        count(f, "metadata count", kvCount, Math.min(MAX_METADATA, left / MIN_METADATA_ENTRY));
        Map<String, Object> meta = new LinkedHashMap<>();
        ArrayBudget budget = new ArrayBudget(f.size());
        for (long i = 0; i < kvCount; i++) {
            String key = string(f, "metadata key #" + i, MAX_NAME_BYTES);
            int type = f.i32("type of metadata " + key);
            if (meta.put(key, value(f, type, key, budget)) != null) {
                throw new ModelFormatException(f.path(), "metadata " + key + " appears twice");
            }
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = string(f, "name of tensor #" + i, MAX_NAME_BYTES);
            int nDims = f.i32("dimension count of tensor " + name);
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw new ModelFormatException(f.path(), "tensor " + name + " has " + nDims + " dimensions, expected 1.." + MAX_DIMS);
            }
            long[] dims = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                dims[d] = f.i64("dimension " + d + " of tensor " + name);
                if (dims[d] <= 0 || dims[d] > f.size()) {
                    throw new ModelFormatException(f.path(), "tensor " + name + " has dimension " + d + " = " + dims[d]
                            + ", expected a positive size no larger than the file");
                }
                elements = multiply(f, name, elements, dims[d]);
            }
            int typeId = f.i32("type of tensor " + name);
            GgmlType type = GgmlType.of(typeId);
            if (type == GgmlType.UNKNOWN) {
                throw new ModelFormatException(f.path(), "tensor " + name + " has type " + GgmlType.label(typeId)
                        + ", which is no GGML type this reader knows (ids 0..30)");
            }
            if (dims[0] % type.blockElements() != 0) {
                throw new ModelFormatException(f.path(), type + " tensor " + name + " has rows of " + dims[0]
                        + " elements, expected a multiple of its block size " + type.blockElements());
            }
            long bytes = multiply(f, name, elements / type.blockElements(), type.blockBytes());
            long offset = f.i64("data offset of tensor " + name);
            if (tensors.put(name, new TensorInfo(name, dims, typeId, offset, bytes)) != null) {
                throw new ModelFormatException(f.path(), "tensor " + name + " appears twice in the tensor directory");
            }
        }
        long alignment = DEFAULT_ALIGNMENT;
        Object a = meta.get("general.alignment");
        if (a != null) {
            if (!(a instanceof Long l) || l <= 0 || l > MAX_ALIGNMENT || Long.bitCount(l) != 1) {
                throw new ModelFormatException(f.path(), "general.alignment is " + a + ", expected a power of two in [1, "
                        + MAX_ALIGNMENT + "]");
            }
            alignment = l;
        }
        long dataStart = (f.position() + alignment - 1) / alignment * alignment;
        checkTensorPlacement(f, tensors.values(), alignment, dataStart);
        return new GgufFile(f, version, Collections.unmodifiableMap(meta), Collections.unmodifiableMap(tensors), dataStart);
    }

    private static void count(ModelFile f, String what, long value, long max) {
        if (value < 0 || value > max) {
            throw new ModelFormatException(f.path(), "header claims a " + what + " of " + value + ", allowed [0, " + max
                    + "] for the " + f.remaining() + " bytes that follow; the file is truncated or corrupt");
        }
    }

    private static long multiply(ModelFile f, String tensor, long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new ModelFormatException(f.path(), "tensor " + tensor + " has more elements or bytes than a 64-bit "
                    + "size holds; the file is corrupt");
        }
    }

    /**
     * Every tensor starts at an aligned offset, lies inside the data section {@code [dataStart, size)} and shares no
     * byte with another tensor: the tensors together are at most the file's length, whatever the directory says.
     */
    private static void checkTensorPlacement(ModelFile f, Collection<TensorInfo> tensors, long alignment, long dataStart) {
        long dataBytes = f.size() - dataStart;
        if (tensors.isEmpty()) {
            return;
        }
        if (dataBytes < 0) {
            throw new ModelFormatException(f.path(), "the data section would start at byte " + dataStart
                    + ", past the end of the file (" + f.size() + " bytes); the file is truncated");
        }
        for (TensorInfo t : tensors) {
            if (t.offset() < 0 || t.offset() % alignment != 0) {
                throw new ModelFormatException(f.path(), "tensor " + t.name() + " starts at data offset " + t.offset()
                        + ", expected a non-negative multiple of the alignment " + alignment);
            }
            if (t.offset() > dataBytes || t.bytes() > dataBytes - t.offset()) {
                throw new ModelFormatException(f.path(), "tensor " + t.name() + " " + t.shape() + " occupies data bytes ["
                        + t.offset() + ", " + t.offset() + " + " + t.bytes() + "), outside the data section of "
                        + dataBytes + " bytes (file offset " + dataStart + " to " + f.size() + "); the file is truncated "
                        + "or corrupt");
            }
        }
        List<TensorInfo> byOffset = new ArrayList<>(tensors);
        byOffset.sort(Comparator.comparingLong(TensorInfo::offset));
        for (int i = 1; i < byOffset.size(); i++) {
            TensorInfo prev = byOffset.get(i - 1);
            TensorInfo t = byOffset.get(i);
            if (t.offset() < prev.offset() + prev.bytes()) {
                throw new ModelFormatException(f.path(), "tensor " + t.name() + " at data bytes [" + t.offset() + ", "
                        + (t.offset() + t.bytes()) + ") overlaps tensor " + prev.name() + " at [" + prev.offset() + ", "
                        + (prev.offset() + prev.bytes()) + "); tensors must not share bytes");
            }
        }
    }

    private static String string(ModelFile f, String what, long max) {
        long n = f.i64("length of " + what);
        long allowed = Math.min(max, f.remaining());
        if (n < 0 || n > allowed) {
            throw new ModelFormatException(f.path(), what + " claims a length of " + n + " bytes, allowed [0, " + allowed
                    + "]; the file is corrupt");
        }
        byte[] b = f.bytes(n, what);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            throw new ModelFormatException(f.path(), what + " is not valid UTF-8; the file is corrupt");
        }
    }

    /** Smallest encoding of a value of GGUF type {@code type}, or 0 for a type this reader cannot hold in an array. */
    private static int minBytes(int type) {
        return switch (type) {
            case 0, 1, 7 -> 1;
            case 2, 3 -> 2;
            case 4, 5, 6 -> 4;
            case 8, 10, 11, 12 -> 8;   // a string is at least its 8-byte length
            default -> 0;
        };
    }

    /** The GGUF spec's name of value type {@code type}. */
    static String typeName(int type) {
        return switch (type) {
            case 0 -> "uint8";
            case 1 -> "int8";
            case 2 -> "uint16";
            case 3 -> "int16";
            case 4 -> "uint32";
            case 5 -> "int32";
            case 6 -> "float32";
            case 7 -> "bool";
            case 8 -> "string";
            case 9 -> "array";
            case 10 -> "uint64";
            case 11 -> "int64";
            case 12 -> "float64";
            default -> "type " + type;
        };
    }

    /** Bytes of heap one element of a materialised array of {@code type} takes (strings: plus their UTF-8 bytes). */
    private static int heapBytes(int type) {
        return switch (type) {
            case 7 -> 1;
            case 6, 8 -> 4;   // float; a string's offset
            default -> 8;     // long, double
        };
    }

    /**
     * How many bytes of heap the materialised arrays may take together: the file's length plus 1 MiB. An array in the
     * file takes at least as many bytes as its elements need in memory (integers of up to 32 bits aside, which no
     * array the loader reads holds), so a well-formed file never comes near it; a file that claims more is refused.
     */
    private static final class ArrayBudget {
        static final long SLACK = 1 << 20;
        final long limit;
        long used;

        ArrayBudget(long fileSize) {
            this.limit = fileSize + SLACK;
        }

        void take(ModelFile f, String key, long bytes) {
            if (bytes < 0 || bytes > limit - used) {
                throw new ModelFormatException(f.path(), "array " + key + " would take " + bytes + " bytes in memory, "
                        + "more than the " + (limit - used) + " left of the metadata arrays' budget (" + limit
                        + " bytes: the file's length + " + SLACK + ")");
            }
            used += bytes;
        }
    }

    /** An integer of GGUF type 0..5, 10 or 11 as a long (unsigned ones keep their value). */
    private static long integer(ModelFile f, int type, String key) {
        return switch (type) {
            case 0 -> f.i8(key) & 0xFF;
            case 1 -> f.i8(key);
            case 2 -> f.i16(key) & 0xFFFF;
            case 3 -> f.i16(key);
            case 4 -> f.i32(key) & 0xFFFFFFFFL;
            case 5 -> f.i32(key);
            case 10, 11 -> f.i64(key);
            default -> throw new AssertionError(type);
        };
    }

    private static boolean bool(ModelFile f, String key) {
        byte b = f.i8(key);
        if (b != 0 && b != 1) {
            throw new ModelFormatException(f.path(), "boolean metadata " + key + " holds " + b + ", expected 0 or 1");
        }
        return b == 1;
    }

    private static Object value(ModelFile f, int type, String key, ArrayBudget budget) {
        return switch (type) {
            case 0, 1, 2, 3, 4, 5, 10, 11 -> integer(f, type, key);
            case 6 -> f.f32(key);
            case 7 -> bool(f, key);
            case 8 -> string(f, "value of " + key, MAX_STRING_BYTES);
            case 9 -> array(f, key, budget);
            case 12 -> f.f64(key);
            default -> throw new ModelFormatException(f.path(), "metadata " + key + " has value type " + type
                    + ", expected one of the GGUF types 0..12");
        };
    }

    /**
     * An array value. Arrays of {@link #READ_ARRAYS} are read into primitive arrays (strings packed into one byte
     * array), charged to {@code budget}; every other array is checked (element type, length, each string's length
     * against the bytes left) and skipped, so that it costs no heap at all.
     */
    private static Array array(ModelFile f, String key, ArrayBudget budget) {
        int elemType = f.i32("element type of " + key);
        long n = f.i64("length of " + key);
        if (elemType == 9) {
            throw new ModelFormatException(f.path(), "array " + key + " nests arrays, which this reader does not support");
        }
        int min = minBytes(elemType);
        if (min == 0) {
            throw new ModelFormatException(f.path(), "array " + key + " has element type " + elemType
                    + ", expected one of the GGUF types 0..12");
        }
        long allowed = Math.min(MAX_ARRAY_ELEMENTS, f.remaining() / min);
        if (n < 0 || n > allowed) {
            throw new ModelFormatException(f.path(), "array " + key + " claims " + n + " elements, allowed [0, "
                    + allowed + "] for the bytes left in the file; the file is corrupt");
        }
        int count = (int) n;   // <= MAX_ARRAY_ELEMENTS
        if (!READ_ARRAYS.contains(key)) {
            if (elemType == 8) {
                f.skipStrings(count, MAX_STRING_BYTES, key);
            } else {
                f.seek(f.position() + (long) count * min);   // count * min <= remaining: checked above
            }
            return new Array(elemType, count, null);
        }
        budget.take(f, key, (long) count * heapBytes(elemType));
        Object values = switch (elemType) {
            case 6 -> {
                float[] a = new float[count];
                for (int i = 0; i < count; i++) {
                    a[i] = f.f32(key);
                }
                yield a;
            }
            case 12 -> {
                double[] a = new double[count];
                for (int i = 0; i < count; i++) {
                    a[i] = f.f64(key);
                }
                yield a;
            }
            case 7 -> {
                boolean[] a = new boolean[count];
                for (int i = 0; i < count; i++) {
                    a[i] = bool(f, key);
                }
                yield a;
            }
            case 8 -> strings(f, key, count, budget);
            default -> {
                long[] a = new long[count];
                for (int i = 0; i < count; i++) {
                    a[i] = integer(f, elemType, key);
                }
                yield a;
            }
        };
        return new Array(elemType, count, values);
    }

    /**
     * {@code count} strings packed into one byte array: a first pass checks every length and sums them, so that the
     * budget is charged and the array allocated once, before a second pass reads and checks the bytes.
     */
    private static StringArray strings(ModelFile f, String key, int count, ArrayBudget budget) {
        long start = f.position();
        long total = f.skipStrings(count, MAX_STRING_BYTES, key);   // each <= the bytes left: below the file's size
        String what = "the length of a string of array " + key;
        if (total > Integer.MAX_VALUE - 16) {
            throw new ModelFormatException(f.path(), "the strings of array " + key + " hold " + total
                    + " bytes, more than this reader supports (" + (Integer.MAX_VALUE - 16) + ")");
        }
        budget.take(f, key, total);
        f.seek(start);
        byte[] utf8 = new byte[(int) total];
        int[] offsets = new int[count + 1];
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        int at = 0;
        for (int i = 0; i < count; i++) {
            int len = (int) f.i64(what);
            byte[] b = f.bytes(len, "a string of array " + key);
            try {
                decoder.reset().decode(ByteBuffer.wrap(b));
            } catch (CharacterCodingException e) {
                throw new ModelFormatException(f.path(), key + "[" + i + "] is not valid UTF-8; the file is corrupt");
            }
            System.arraycopy(b, 0, utf8, at, len);
            at += len;
            offsets[i + 1] = at;
        }
        return new StringArray(utf8, offsets);
    }

    java.nio.file.Path path() {
        return file.path();
    }

    int version() {
        return version;
    }

    Map<String, Object> metadata() {
        return metadata;
    }

    Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** A required metadata entry of the given Java type. */
    <T> T require(String key, Class<T> type) {
        Object v = metadata.get(key);
        if (v == null) {
            throw new ModelFormatException(path(), "metadata " + key + " is missing");
        }
        if (!type.isInstance(v)) {
            throw new ModelFormatException(path(), "metadata " + key + " is " + v.getClass().getSimpleName() + " " + v
                    + ", expected " + type.getSimpleName());
        }
        return type.cast(v);
    }

    /** The values of a required array of {@link #READ_ARRAYS} whose elements are of GGUF type {@code elementType}. */
    private Object requireArray(String key, int elementType) {
        Object v = metadata.get(key);
        if (v == null) {
            throw new ModelFormatException(path(), "metadata " + key + " is missing");
        }
        if (!(v instanceof Array a) || a.elementType() != elementType || a.values() == null) {
            throw new ModelFormatException(path(), "metadata " + key + " is "
                    + (v instanceof Array a ? a.describe() : v.getClass().getSimpleName() + " " + v)
                    + ", expected an array of " + typeName(elementType));
        }
        return a.values();
    }

    /** A required array of strings (one of {@link #READ_ARRAYS}). */
    StringArray requireStrings(String key) {
        return (StringArray) requireArray(key, 8);
    }

    /** A required array of float32 (one of {@link #READ_ARRAYS}). */
    float[] requireFloats(String key) {
        return (float[]) requireArray(key, 6);
    }

    /** A required integer metadata entry in [min, max]. */
    int requireInt(String key, int min, int max) {
        return checkInt(key, require(key, Long.class), min, max);
    }

    int optionalInt(String key, int def, int min, int max) {
        return metadata.containsKey(key) ? requireInt(key, min, max) : def;
    }

    private int checkInt(String key, long v, int min, int max) {
        if (v < min || v > max) {
            throw new ModelFormatException(path(), "metadata " + key + " is " + v + ", expected " + min + ".." + max);
        }
        return (int) v;
    }

    /** A float metadata entry (FLOAT32 or FLOAT64), or {@code def} if absent. */
    float optionalFloat(String key, float def) {
        Object v = metadata.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Float x) {
            return x;
        }
        if (v instanceof Double x) {
            return x.floatValue();
        }
        throw new ModelFormatException(path(), "metadata " + key + " is " + v + ", expected a float");
    }

    /**
     * The named tensor as float32, after checking its shape is {@code expectedDims} and its type is supported.
     *
     * @param expectedDims GGUF order: {@code [row length, rows]} for a matrix
     */
    float[] readTensor(String name, long... expectedDims) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(path(), "tensor " + name + " is missing");
        }
        if (!java.util.Arrays.equals(t.dims(), expectedDims)) {
            throw new ModelFormatException(path(), "tensor " + name + " has shape " + t.shape() + ", expected "
                    + new TensorInfo(name, expectedDims, t.typeId(), 0, 0).shape() + " for the model's metadata");
        }
        if (!t.type().supported()) {
            throw new ModelFormatException(path(), "tensor " + name + " has type " + GgmlType.label(t.typeId())
                    + ", which this runner does not support; supported tensor types: F32, F16, BF16, Q8_0");
        }
        long n = t.elements();
        if (t.type() == GgmlType.Q8_0 && t.dims()[0] % 32 != 0) {
            throw new ModelFormatException(path(), "Q8_0 tensor " + name + " has rows of " + t.dims()[0]
                    + " elements, expected a multiple of 32");
        }
        file.seek(dataStart + t.offset());   // inside the data section: checked by parse()
        String what = "tensor " + name;
        return switch (t.type()) {
            case F32 -> file.floats(n, what);
            case F16 -> file.halfs(n, what);
            case BF16 -> file.bfloats(n, what);
            case Q8_0 -> file.q8_0(n, what);
            default -> throw new AssertionError(t.type());
        };
    }
}
