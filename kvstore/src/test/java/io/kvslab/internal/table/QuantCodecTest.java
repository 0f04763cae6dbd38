package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.testing.StoredValues;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ggml's q8_0 / q4_0 as the store writes them: hand-computed blocks byte for byte, equality with an independent
 * port of ggml's reference quantisers ({@link StoredValues}), and ggml's per-group error bound.
 */
class QuantCodecTest {

    private static byte[] encode(float[] row, DType dt) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(dt.rowBytes(row.length));
            QuantCodec.write(row, 0, seg, 0, row.length, dt);
            return seg.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    private static float[] decode(byte[] bytes, int dim, DType dt) {
        float[] out = new float[dim];
        QuantCodec.read(MemorySegment.ofArray(bytes), 0, out, 0, dim, dt);
        return out;
    }

    private static byte[] bytes(int... b) {
        byte[] r = new byte[b.length];
        for (int i = 0; i < b.length; i++) {
            r[i] = (byte) b[i];
        }
        return r;
    }

    @Test
    void q8BlockOfEightByHand() {
        // amax 127: d = 1 (f16 0x3C00), id = 1; codes roundf(x): half away from zero (-2.5 -> -3, 0.5 -> 1)
        float[] x = {127, -2.5f, 0.5f, 3.49f, -0.5f, 0, 1.5f, -127};
        byte[] got = encode(x, DType.Q8_0);
        assertArrayEquals(bytes(0x00, 0x3C, 127, -3, 1, 3, -1, 0, 2, -127), got);
        assertArrayEquals(new float[] {127, -3, 1, 3, -1, 0, 2, -127}, decode(got, 8, DType.Q8_0));
    }

    @Test
    void q4BlockOfEightByHand() {
        // max (largest magnitude, sign kept) -8: d = -8 / -8 = 1; code = min(15, (int8)(x + 8.5));
        // byte j = code[j] | code[j + 4] << 4
        float[] x = {-8, 1, 2.4f, -3.5f, 7, 0.5f, -0.6f, 3};
        // codes 0, 9, 10, 5 | 15, 9, 7, 11
        byte[] got = encode(x, DType.Q4_0);
        assertArrayEquals(bytes(0x00, 0x3C, 0xF0, 0x99, 0x7A, 0xB5), got);
        assertArrayEquals(new float[] {-8, 1, 2, -3, 7, 1, -1, 3}, decode(got, 8, DType.Q4_0));
        // a positive max gives a negative scale: max 4 -> d = -0.5 (f16 0xB800); 4 -> code 0 -> (0 - 8) * -0.5 = 4;
        // -4 -> -4 * -2 + 8.5 = 16.5 -> 16 -> clamped to 15 -> (15 - 8) * -0.5 = -3.5 (ggml's clamp, error |d|)
        float[] y = {4, -4, 1, 0, 0.25f, -1, 2, 0};
        byte[] gy = encode(y, DType.Q4_0);
        assertEquals((byte) 0x00, gy[0]);
        assertEquals((byte) 0xB8, gy[1]);
        float[] back = decode(gy, 8, DType.Q4_0);
        assertEquals(4f, back[0]);
        assertEquals(-3.5f, back[1]);
    }

    @Test
    void rowsOfThirtyTwoValueGroupsHaveGgmlsSizes() {
        assertEquals(34, DType.Q8_0.rowBytes(32));
        assertEquals(18, DType.Q4_0.rowBytes(32));
        assertEquals(136, DType.Q8_0.rowBytes(128));
        assertEquals(72, DType.Q4_0.rowBytes(128));
        assertEquals(10, DType.Q8_0.rowBytes(8));
        assertEquals(6, DType.Q4_0.rowBytes(8));
        assertEquals(256, DType.F16.rowBytes(128));
    }

    @Test
    void matchesAnIndependentPortOfGgmlAndItsErrorBound() {
        Random rnd = new Random(42);
        for (DType dt : new DType[] {DType.Q8_0, DType.Q4_0}) {
            for (int dim : new int[] {2, 8, 16, 24, 32, 64, 128}) {
                for (int trial = 0; trial < 200; trial++) {
                    float scale = (float) Math.pow(10, rnd.nextInt(9) - 4);   // 1e-4 .. 1e4
                    float[] x = new float[dim];
                    for (int i = 0; i < dim; i++) {
                        x[i] = (float) (rnd.nextGaussian() * scale);
                    }
                    if (trial % 17 == 0) {
                        x[rnd.nextInt(dim)] = 0;
                        x[0] = -x[0];
                    }
                    float[] got = decode(encode(x, dt), dim, dt);
                    assertArrayEquals(StoredValues.of(dt, x, dim), got, dt + " dim " + dim + " trial " + trial);
                    checkBound(x, got, dt);
                }
            }
        }
    }

    /**
     * ggml's bound per group, stated with the fp32 scale d the codes are computed with and the f16 scale dh that
     * is stored: q8_0 |x - x'| <= d/2 + 127 |d - dh|; q4_0 the same with 8 codes each side, except a value
     * clamped at code 15 (the opposite extreme of max), which may be off by |d|.
     */
    private static void checkBound(float[] x, float[] got, DType dt) {
        int g = dt.groupSize(x.length);
        for (int b = 0; b < x.length; b += g) {
            float amax = 0;
            float max = 0;
            for (int j = b; j < b + g; j++) {
                if (amax < Math.abs(x[j])) {
                    amax = Math.abs(x[j]);
                    max = x[j];
                }
            }
            float d = dt == DType.Q8_0 ? amax / 127 : max / -8;
            float dh = Float.float16ToFloat(Float.floatToFloat16(d));
            int steps = dt == DType.Q8_0 ? 127 : 8;
            double slack = steps * Math.abs(d - dh) + 4 * Math.ulp(amax);
            for (int j = b; j < b + g; j++) {
                boolean clamped = dt == DType.Q4_0 && d != 0 && x[j] / d + 8.5f >= 16;
                double bound = (clamped ? Math.abs(d) : Math.abs(d) / 2) + slack;
                double err = Math.abs(x[j] - got[j]);
                assertTrue(err <= bound, dt + " x=" + x[j] + " x'=" + got[j] + " err " + err + " > " + bound);
            }
        }
    }

    @Test
    void aGroupNeverSpansTwoRows() {
        // two rows of 8 back to back, the second tiny: with one group per row it keeps ~1/127 relative precision;
        // a group spanning both rows would round the second to zero
        float[] rows = {100, -50, 25, 12, 6, 3, 1, 0.5f, 1e-3f, -2e-3f, 3e-3f, 4e-3f, -5e-3f, 6e-3f, 7e-3f, -8e-3f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(2 * DType.Q8_0.rowBytes(8));
            RowCodec.writeRows(rows, 0, seg, 0, 2, 8, DType.Q8_0);
            float[] back = new float[16];
            RowCodec.readRows(seg, 0, back, 0, 2, 8, DType.Q8_0);
            for (int i = 8; i < 16; i++) {
                assertEquals(rows[i], back[i], 8e-3 / 127, "second row value " + i);
            }
        }
    }
}
