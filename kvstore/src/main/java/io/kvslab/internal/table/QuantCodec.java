package io.kvslab.internal.table;

import io.kvslab.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml's q8_0 and q4_0 block quantisation of fp32 rows, and its inverse, following ggml's reference code
 * ({@code quantize_row_q8_0_ref}, {@code quantize_row_q4_0_ref}, {@code dequantize_row_q*_0}) value for value,
 * with groups of {@code g = min(32, headDim)} values instead of ggml's fixed 32. Stateless; one row per call.
 *
 * <p>Group layout (little-endian): f16 scale {@code d}, then the codes. q8_0: {@code g} int8 codes
 * {@code q = roundf(x / d)} with {@code d = amax / 127}. q4_0: {@code g / 2} bytes; byte {@code j} holds the code of
 * value {@code j} in its low nibble and of value {@code j + g/2} in its high nibble; {@code d = max / -8} where
 * {@code max} is the value of largest magnitude (sign kept), code {@code min(15, (int8)(x / d + 8.5))}, value
 * {@code (code - 8) * d}. Codes are computed with the fp32 {@code d}; reads use the stored f16 {@code d}.
 */
final class QuantCodec {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private QuantCodec() {}

    /** Quantises {@code src[from .. from + dim)} (one row, finite values) into {@code dst} at byte {@code offset}. */
    static void write(float[] src, int from, MemorySegment dst, long offset, int dim, DType dtype) {
        int g = dtype.groupSize(dim);
        int groupBytes = dtype.groupBytes(dim);
        byte[] out = scratch((dim / g) * groupBytes);
        int o = 0;
        for (int start = from; start < from + dim; start += g) {
            if (dtype == DType.Q8_0) {
                encodeQ8(src, start, g, out, o);
            } else {
                encodeQ4(src, start, g, out, o);
            }
            o += groupBytes;
        }
        MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, offset, o);
    }

    /** Dequantises one row of {@code dim} values stored at {@code src[offset ..]} into {@code dst[to ..]}. */
    static void read(MemorySegment src, long offset, float[] dst, int to, int dim, DType dtype) {
        int g = dtype.groupSize(dim);
        int groupBytes = dtype.groupBytes(dim);
        int n = (dim / g) * groupBytes;
        byte[] in = scratch(n);
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, offset, in, 0, n);
        int o = 0;
        for (int start = to; start < to + dim; start += g) {
            float d = Float.float16ToFloat((short) ((in[o] & 0xFF) | (in[o + 1] << 8)));
            if (dtype == DType.Q8_0) {
                for (int j = 0; j < g; j++) {
                    dst[start + j] = in[o + 2 + j] * d;
                }
            } else {
                int half = g / 2;
                for (int j = 0; j < half; j++) {
                    int b = in[o + 2 + j] & 0xFF;
                    dst[start + j] = ((b & 0x0F) - 8) * d;
                    dst[start + j + half] = ((b >>> 4) - 8) * d;
                }
            }
            o += groupBytes;
        }
    }

    /** The stored (f16) scale of group {@code group} of the row at {@code offset}. */
    static float scale(MemorySegment src, long offset, int group, int dim, DType dtype) {
        return Float.float16ToFloat(src.get(U16, offset + (long) group * dtype.groupBytes(dim)));
    }

    static void encodeQ8(float[] x, int from, int g, byte[] out, int o) {
        float amax = 0;
        for (int j = 0; j < g; j++) {
            amax = Math.max(amax, Math.abs(x[from + j]));
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        short h = Float.floatToFloat16(d);
        out[o] = (byte) h;
        out[o + 1] = (byte) (h >> 8);
        for (int j = 0; j < g; j++) {
            out[o + 2 + j] = (byte) roundf(x[from + j] * id);
        }
    }

    static void encodeQ4(float[] x, int from, int g, byte[] out, int o) {
        float amax = 0;
        float max = 0;
        for (int j = 0; j < g; j++) {
            float v = x[from + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        short h = Float.floatToFloat16(d);
        out[o] = (byte) h;
        out[o + 1] = (byte) (h >> 8);
        int half = g / 2;
        for (int j = 0; j < half; j++) {
            float x0 = x[from + j] * id;
            float x1 = x[from + half + j] * id;
            int xi0 = Math.min(15, (byte) (int) (x0 + 8.5f));
            int xi1 = Math.min(15, (byte) (int) (x1 + 8.5f));
            out[o + 2 + j] = (byte) (xi0 | (xi1 << 4));
        }
    }

    /** C's {@code roundf}: half away from zero (Java's Math.round rounds half up). Exact in double for a float. */
    static int roundf(float x) {
        double a = Math.floor(Math.abs((double) x) + 0.5);
        return (int) Math.copySign(a, x);
    }

    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[256]);

    private static byte[] scratch(int n) {
        byte[] b = SCRATCH.get();
        if (b.length < n) {
            b = new byte[Math.max(n, 2 * b.length)];
            SCRATCH.set(b);
        }
        return b;
    }
}
