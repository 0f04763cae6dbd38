package io.kvslab.bench.fuzz;

/**
 * One little-endian integer field of a parsed seed file.
 *
 * @param name   where it is, for case descriptions ("header.blocks", "tensor[3].offset")
 * @param offset byte offset in the file
 * @param width  1, 2, 4 or 8 bytes
 * @param kind   what it means
 */
record Field(String name, int offset, int width, FieldKind kind) {
    /** The field's value, sign-extended; 0 for the part of it past the end of {@code b}. */
    long read(byte[] b) {
        long v = 0;
        for (int i = width - 1; i >= 0; i--) {
            int at = offset + i;
            v = (v << 8) | (at < b.length ? b[at] & 0xFF : 0);
        }
        int shift = 64 - 8 * width;
        return (v << shift) >> shift;
    }

    /** Writes the low {@code width} bytes of {@code v}; bytes past the end of {@code b} are skipped. */
    void write(byte[] b, long v) {
        for (int i = 0; i < width; i++) {
            int at = offset + i;
            if (at < b.length) {
                b[at] = (byte) (v >>> (8 * i));
            }
        }
    }

    /** Largest signed value of the field's width. */
    long maxSigned() {
        return width == 8 ? Long.MAX_VALUE : (1L << (8 * width - 1)) - 1;
    }
}
