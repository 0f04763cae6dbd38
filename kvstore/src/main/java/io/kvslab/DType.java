package io.kvslab;

/**
 * Element type of stored K and V rows. Attention always computes in fp32; stored rows are converted on the fly.
 *
 * <p>F32, F16 and BF16 store each value on its own ({@link #bytes()} bytes). Q8_0 and Q4_0 are ggml's block
 * quantisations: a row (one (layer, KV head) vector of {@code headDim} values) is cut into groups of
 * {@code g = min(32, headDim)} values, each stored as one f16 scale {@code d} followed by {@code g} signed bytes
 * (Q8_0, value {@code q * d}) or {@code g / 2} bytes of 4-bit codes (Q4_0, value {@code (q - 8) * d}). A group
 * never spans two rows or two heads. For head dim >= 32 these are exactly ggml's 34 and 18 bytes per 32 values;
 * for head dim 8 they are 10 and 6 bytes per 8 values. A quantised dtype needs a head dim that is a multiple of
 * 32 or below 32 (and even, for Q4_0). Row sizes are therefore {@link #rowBytes(int)}, not head dim times a
 * per-element size. Error bounds: docs/dtypes.md.
 */
public enum DType {
    /** IEEE 754 single precision, 4 bytes per value. */
    F32(4, 0, 0),
    /** IEEE 754 half precision, 2 bytes per value (largest finite magnitude 65504). */
    F16(2, 1, 0),
    /** bfloat16 (the top 16 bits of an f32, rounded to nearest even), 2 bytes per value. */
    BF16(2, 2, 0),
    /** ggml q8_0: per group an f16 scale {@code d = amax / 127} and {@code g} int8 codes. */
    Q8_0(0, 3, 8),
    /** ggml q4_0: per group an f16 scale {@code d = max / -8} and {@code g} 4-bit codes (offset 8). */
    Q4_0(0, 4, 4);

    /** Values per quantisation group when the head dim allows it (ggml's QK8_0 = QK4_0 = 32). */
    public static final int GROUP = 32;

    private final int bytes;
    private final int code;
    private final int codeBits;

    DType(int bytes, int code, int codeBits) {
        this.bytes = bytes;
        this.code = code;
        this.codeBits = codeBits;
    }

    /**
     * Whether rows of this type are stored as block-quantised groups (Q8_0, Q4_0).
     *
     * @return {@code true} for Q8_0 and Q4_0
     */
    public boolean isQuantized() {
        return codeBits != 0;
    }

    /**
     * Bytes per element of an unquantised type (F32: 4, F16/BF16: 2). A quantised type has no whole bytes per
     * element: throws {@link KvArgumentException}; use {@link #rowBytes(int)}.
     *
     * @return 4 or 2
     */
    public int bytes() {
        if (isQuantized()) {
            throw new KvArgumentException(this + " has no fixed bytes per element (it stores groups of values with "
                    + "one scale each); use rowBytes(headDim)");
        }
        return bytes;
    }

    /**
     * The dtype code of the native ABI (0 = f32, 1 = f16, 2 = bf16, 3 = q8_0, 4 = q4_0).
     *
     * @return the code, in {@code [0, 4]}
     */
    public int code() {
        return code;
    }

    /**
     * Values per quantisation group for rows of {@code headDim} values: {@code min(32, headDim)}; 1 for an
     * unquantised type. Throws {@link KvArgumentException} if this type cannot store such rows.
     *
     * @param headDim values per row, {@code >= 1}
     * @return the group size, in {@code [1, 32]}
     */
    public int groupSize(int headDim) {
        checkHeadDim(headDim);
        return isQuantized() ? Math.min(GROUP, headDim) : 1;
    }

    /**
     * Bytes of one group: the f16 scale and the codes.
     *
     * @param headDim values per row, {@code >= 1}
     * @return the group's size in bytes (the element size for an unquantised type)
     */
    public int groupBytes(int headDim) {
        int g = groupSize(headDim);
        return isQuantized() ? 2 + g * codeBits / 8 : bytes;
    }

    /**
     * Bytes of one stored row of {@code headDim} values (the store's unit of geometry).
     *
     * @param headDim values per row, {@code >= 1}
     * @return bytes per row
     */
    public long rowBytes(int headDim) {
        int g = groupSize(headDim);
        return (long) (headDim / g) * groupBytes(headDim);
    }

    /**
     * Throws {@link KvArgumentException} unless rows of {@code headDim} values can be stored as this type.
     *
     * @param headDim values per row
     */
    public void checkHeadDim(int headDim) {
        if (headDim <= 0) {
            throw new KvArgumentException("headDim must be > 0, got " + headDim);
        }
        if (!isQuantized()) {
            return;
        }
        if (headDim > GROUP && headDim % GROUP != 0) {
            throw new KvArgumentException(this + " needs a headDim that is a multiple of " + GROUP + " or below "
                    + GROUP + " (groups of " + GROUP + " values never span two heads), got " + headDim);
        }
        if (this == Q4_0 && headDim % 2 != 0) {
            throw new KvArgumentException("Q4_0 needs an even headDim (two 4-bit codes per byte), got " + headDim);
        }
    }

    /**
     * The type with this native dtype code, or null.
     *
     * @param code a native dtype code
     * @return the type, or {@code null} for an unknown code
     */
    public static DType ofCode(int code) {
        for (DType d : ALL) {
            if (d.code == code) {
                return d;
            }
        }
        return null;
    }

    /** {@code values()} once: it clones its array on every call, and every decode call looks a code up here. */
    private static final DType[] ALL = values();
}
