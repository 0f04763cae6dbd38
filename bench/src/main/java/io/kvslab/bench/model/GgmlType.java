package io.kvslab.bench.model;

/**
 * GGML tensor types by their GGUF id, with their storage geometry (elements per block, bytes per block, as ggml's
 * {@code ggml_type_traits} define them) so that every tensor's byte size is known at parse time; only F32, F16, BF16 and
 * Q8_0 can be loaded.
 */
enum GgmlType {
    F32(0, true, 1, 4), F16(1, true, 1, 2), Q4_0(2, false, 32, 18), Q4_1(3, false, 32, 20), Q5_0(6, false, 32, 22),
    Q5_1(7, false, 32, 24), Q8_0(8, true, 32, 34), Q8_1(9, false, 32, 36), Q2_K(10, false, 256, 84),
    Q3_K(11, false, 256, 110), Q4_K(12, false, 256, 144), Q5_K(13, false, 256, 176), Q6_K(14, false, 256, 210),
    Q8_K(15, false, 256, 292), IQ2_XXS(16, false, 256, 66), IQ2_XS(17, false, 256, 74), IQ3_XXS(18, false, 256, 98),
    IQ1_S(19, false, 256, 50), IQ4_NL(20, false, 32, 18), IQ3_S(21, false, 256, 110), IQ2_S(22, false, 256, 82),
    IQ4_XS(23, false, 256, 136), I8(24, false, 1, 1), I16(25, false, 1, 2), I32(26, false, 1, 4),
    I64(27, false, 1, 8), F64(28, false, 1, 8), IQ1_M(29, false, 256, 56), BF16(30, true, 1, 2),
    UNKNOWN(-1, false, 0, 0);

    private final int id;
    private final boolean supported;
    private final int blockElements;
    private final int blockBytes;

    GgmlType(int id, boolean supported, int blockElements, int blockBytes) {
        this.id = id;
        this.supported = supported;
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
    }

    static GgmlType of(int id) {
        for (GgmlType t : values()) {
            if (t.id == id && t != UNKNOWN) {
                return t;
            }
        }
        return UNKNOWN;
    }

    int id() {
        return id;
    }

    boolean supported() {
        return supported;
    }

    /** Elements per storage block (1 for plain types, 32 or 256 for quantised ones); a row holds whole blocks. */
    int blockElements() {
        return blockElements;
    }

    /** Bytes per storage block. */
    int blockBytes() {
        return blockBytes;
    }

    /** "Q4_K (id 12)", or "unknown id 99" for an id GGML does not define. */
    static String label(int id) {
        GgmlType t = of(id);
        return t == UNKNOWN ? "unknown id " + id : t.name() + " (id " + id + ")";
    }
}
