package io.kvslab.snapshot;

import io.kvslab.KvLayout;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;

import java.io.ByteArrayOutputStream;

/** Deterministic test rows and raw (bitwise) views of sequences. */
final class Rows {
    private Rows() {}

    static float value(int l, int h, long p, int d, boolean key) {
        return (float) Math.sin(0.5 + l * 5.3 + h * 2.9 + p * 0.41 + d * 1.7 + (key ? 0 : 13.0)) * 3f;
    }

    static float[] token(KvLayout layout, int l, long p, boolean key) {
        int dim = layout.headDim();
        float[] x = new float[layout.kvHeads() * dim];
        for (int h = 0; h < layout.kvHeads(); h++) {
            for (int d = 0; d < dim; d++) {
                x[h * dim + d] = value(l, h, p, d, key);
            }
        }
        return x;
    }

    static void fill(Sequence s, long from, long to) {
        KvLayout layout = s.layout();
        for (int l = 0; l < layout.layers(); l++) {
            for (long p = from; p < to; p++) {
                s.append(l, token(layout, l, p, true), token(layout, l, p, false), p);
            }
        }
    }

    /** Every stored byte of one (layer, head) K or V table, rows in order (only the rows the table holds). */
    static byte[] raw(Sequence s, int l, int h, boolean keys) {
        KvLayout layout = s.layout();
        int tpb = layout.tokensPerBlock();
        int length = s.length(l, h);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[(int) layout.blockBytes()];
        for (int b = 0; b < s.blockCount(l, h); b++) {
            int rows = Math.min(tpb, length - b * tpb);
            RawBlocks.readRows(s, l, h, keys, b, rows, buf, 0);
            out.write(buf, 0, (int) (rows * layout.rowBytes()));
        }
        return out.toByteArray();
    }

    /** The rows one (layer, head) must hold for these positions, computed independently and rounded like dtype. */
    static float[] expected(KvLayout layout, int l, int h, long[] positions, boolean key) {
        int dim = layout.headDim();
        float[] x = new float[positions.length * dim];
        for (int i = 0; i < positions.length; i++) {
            for (int d = 0; d < dim; d++) {
                x[i * dim + d] = value(l, h, positions[i], d, key);
            }
        }
        return io.kvslab.testing.StoredValues.of(layout.dtype(), x, dim);
    }

    /** Round-to-nearest-even to bf16 and back, written independently of the library's codec. */
    static float bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int lsb = (bits >>> 16) & 1;
        int rounded = (bits + 0x7FFF + lsb) & 0xFFFF0000;
        return Float.intBitsToFloat(rounded);
    }
}
