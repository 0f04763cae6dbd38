package io.kvslab.internal.table;

import io.kvslab.DType;

/**
 * The value rule of {@code Sequence.append}, applied to raw stored rows: every element must be a finite number of
 * its dtype. For F16 and BF16 a finite bit pattern is also within the dtype's range (F16: |x| <= 65504), so the
 * check is on the exponent field alone: all ones means infinity or NaN. A snapshot's checksums only prove the
 * bytes are the ones written; this check keeps a crafted file from putting values into the store that append
 * would have refused. Shared by snapshot restores and tier records (io.kvslab.internal.tier).
 */
public final class PayloadValues {
    private PayloadValues() {}

    /** Index of the first element of {@code b[0, len)} that is not finite in {@code dtype}, or -1. Little-endian. */
    public static int firstNonFinite(byte[] b, int len, DType dtype) {
        return firstNonFinite(b, 0, len, dtype);
    }

    /** Index, counted from {@code off}, of the first element of {@code b[off, off + len)} that is not finite. */
    public static int firstNonFinite(byte[] b, int off, int len, DType dtype) {
        int end = off + len;
        switch (dtype) {
            case F32 -> {
                for (int i = off; i + 3 < end; i += 4) {
                    // exponent bits of a little-endian float32 live in bytes 3 (7 bits) and 2 (top bit)
                    if ((b[i + 3] & 0x7F) == 0x7F && (b[i + 2] & 0x80) == 0x80) {
                        return (i - off) / 4;
                    }
                }
            }
            case F16 -> {
                for (int i = off; i + 1 < end; i += 2) {
                    if ((b[i + 1] & 0x7C) == 0x7C) {
                        return (i - off) / 2;
                    }
                }
            }
            case BF16 -> {
                for (int i = off; i + 1 < end; i += 2) {
                    if ((b[i + 1] & 0x7F) == 0x7F && (b[i] & 0x80) == 0x80) {
                        return (i - off) / 2;
                    }
                }
            }
        }
        return -1;
    }

    /** The element's bit pattern and meaning, e.g. "NaN (bits 0x7e00)". */
    public static String describe(byte[] b, int element, DType dtype) {
        return describe(b, 0, element, dtype);
    }

    /** As {@link #describe(byte[], int, DType)} for elements counted from {@code off}. */
    public static String describe(byte[] b, int off, int element, DType dtype) {
        int bytes = dtype.bytes();
        long bits = 0;
        for (int k = bytes - 1; k >= 0; k--) {
            bits = (bits << 8) | (b[off + element * bytes + k] & 0xFF);
        }
        boolean nan = switch (dtype) {
            case F32 -> (bits & 0x007FFFFFL) != 0;
            case F16 -> (bits & 0x03FF) != 0;
            case BF16 -> (bits & 0x007F) != 0;
        };
        String what = nan ? "NaN" : ((bits >>> (8 * bytes - 1)) != 0 ? "-Infinity" : "Infinity");
        return what + " (" + dtype + " bits 0x" + Long.toHexString(bits) + ")";
    }
}
