package io.kvslab.bench.model;

/** GGML tensor types by their GGUF id; only F32, F16, BF16 and Q8_0 can be loaded. */
enum GgmlType {
    F32(0, true), F16(1, true), Q4_0(2, false), Q4_1(3, false), Q5_0(6, false), Q5_1(7, false), Q8_0(8, true),
    Q8_1(9, false), Q2_K(10, false), Q3_K(11, false), Q4_K(12, false), Q5_K(13, false), Q6_K(14, false),
    Q8_K(15, false), IQ2_XXS(16, false), IQ2_XS(17, false), IQ3_XXS(18, false), IQ1_S(19, false),
    IQ4_NL(20, false), IQ3_S(21, false), IQ2_S(22, false), IQ4_XS(23, false), I8(24, false), I16(25, false),
    I32(26, false), I64(27, false), F64(28, false), IQ1_M(29, false), BF16(30, true), UNKNOWN(-1, false);

    private final int id;
    private final boolean supported;

    GgmlType(int id, boolean supported) {
        this.id = id;
        this.supported = supported;
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

    /** "Q4_K (id 12)", or "unknown id 99" for an id GGML does not define. */
    static String label(int id) {
        GgmlType t = of(id);
        return t == UNKNOWN ? "unknown id " + id : t.name() + " (id " + id + ")";
    }
}
