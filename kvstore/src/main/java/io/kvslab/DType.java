package io.kvslab;

/** Element type of stored K and V rows. Attention always computes in fp32; f16/bf16 are converted on the fly. */
public enum DType {
    F32(4, 0),
    F16(2, 1),
    BF16(2, 2);

    private final int bytes;
    private final int code;

    DType(int bytes, int code) {
        this.bytes = bytes;
        this.code = code;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The dtype code of the native ABI (0 = f32, 1 = f16, 2 = bf16). */
    public int code() {
        return code;
    }
}
