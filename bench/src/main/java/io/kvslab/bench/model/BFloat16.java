package io.kvslab.bench.model;

/**
 * bfloat16 (the high half of a float32) for bench, the counterpart of the JDK's {@link Float#float16ToFloat} /
 * {@link Float#floatToFloat16} for IEEE half precision. The store has its own codec (internal to the library); bench
 * keeps this one so model loading and the stress checkers' independent oracle share a single implementation.
 */
public final class BFloat16 {
    private BFloat16() {}

    /** The float a bfloat16 bit pattern stands for (exact: widening only appends zero bits). */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** The bfloat16 nearest to {@code x}, ties to even (the rounding the store uses). */
    public static short fromFloat(float x) {
        int bits = Float.floatToRawIntBits(x);
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }
}
