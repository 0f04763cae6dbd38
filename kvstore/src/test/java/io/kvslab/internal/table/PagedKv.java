package io.kvslab.internal.table;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

/**
 * A paged K/V cache built directly in a test arena, the way the store lays it out (rows of headDim elements,
 * blockRows rows per block, separate K and V blocks), with random contents. keys[h] / values[h] hold the
 * dequantized stored values ([row][dim]) the reference attention computes with.
 */
final class PagedKv {
    final AttentionShape shape;
    final long[] lengths;
    final float[][] keys;
    final float[][] values;
    final MemorySegment keyBlocks;
    final MemorySegment valueBlocks;
    final MemorySegment offsets;
    final MemorySegment lengthSegment;

    /**
     * The int64 region a batched decode takes ({@link NativeAttention#decodeBatch}): room for the descriptors, then
     * each sequence's offsets, lengths, K and V addresses copied from its own arrays, in batch order.
     */
    static MemorySegment packBatch(Arena arena, PagedKv... kvs) {
        int heads = kvs.length == 0 ? 0 : kvs[0].shape.kvHeads();
        long longs = NativeAttention.DESCRIPTOR_BYTES / 8 * kvs.length;
        for (PagedKv kv : kvs) {
            longs += NativeAttention.packedTableLongs(heads, kv.offsets.getAtIndex(JAVA_LONG, heads));
        }
        MemorySegment tables = arena.allocate(Math.max(8, longs * 8), 8);
        long at = NativeAttention.DESCRIPTOR_BYTES * kvs.length;
        for (PagedKv kv : kvs) {
            long blocks = kv.offsets.getAtIndex(JAVA_LONG, heads);
            MemorySegment.copy(kv.offsets, 0, tables, at, 8L * (heads + 1));
            MemorySegment.copy(kv.lengthSegment, 0, tables, NativeAttention.packedLengthsAt(at, heads), 8L * heads);
            long keysAt = NativeAttention.packedKeysAt(at, heads);
            MemorySegment.copy(kv.keyBlocks, 0, tables, keysAt, 8 * blocks);
            MemorySegment.copy(kv.valueBlocks, 0, tables, keysAt + 8 * blocks, 8 * blocks);
            at = keysAt + 16 * blocks;
        }
        return tables;
    }

    /**
     * @param spareBlocks extra (unused) blocks given to every head, to check that only the needed ones are read
     * @param keyScale    amplitude of the keys (large values give peaked softmax distributions)
     */
    PagedKv(Arena arena, AttentionShape shape, long[] lengths, Random rnd, int spareBlocks, float keyScale) {
        this.shape = shape;
        this.lengths = lengths.clone();
        int heads = shape.kvHeads();
        int br = shape.blockRows();
        int d = shape.headDim();
        long keyRowBytes = shape.keyRowBytes();
        long valueRowBytes = shape.valueRowBytes();
        boolean mixed = shape.keyDtype() != shape.valueDtype();
        keys = new float[heads][];
        values = new float[heads][];
        long[] off = new long[heads + 1];
        for (int h = 0; h < heads; h++) {
            off[h + 1] = off[h] + (lengths[h] + br - 1) / br + spareBlocks;
        }
        int blocks = (int) off[heads];
        keyBlocks = arena.allocate(Math.max(8, blocks * 8L), 8);
        valueBlocks = arena.allocate(Math.max(8, blocks * 8L), 8);
        // allocate K and V blocks interleaved and in shuffled order, so neighbouring blocks are not adjacent
        List<Integer> order = new ArrayList<>();
        for (int b = 0; b < blocks; b++) {
            order.add(b);
        }
        Collections.shuffle(order, rnd);
        MemorySegment[] kSeg = new MemorySegment[blocks];
        MemorySegment[] vSeg = new MemorySegment[blocks];
        for (int b : order) {
            kSeg[b] = arena.allocate(keyRowBytes * br, 64);
            vSeg[b] = arena.allocate(valueRowBytes * br, 64);
            keyBlocks.setAtIndex(JAVA_LONG, b, kSeg[b].address());
            valueBlocks.setAtIndex(JAVA_LONG, b, vSeg[b].address());
        }
        for (int h = 0; h < heads; h++) {
            int len = (int) lengths[h];
            keys[h] = new float[len * d];
            values[h] = new float[len * d];
            for (int r = 0; r < len; r++) {
                int b = (int) off[h] + r / br;
                if (mixed) {
                    // K and V of different types: each side written with its own type, read back dequantised
                    float[] k = new float[d];
                    float[] v = new float[d];
                    for (int c = 0; c < d; c++) {
                        k[c] = unit(rnd) * keyScale;
                        v[c] = unit(rnd);
                    }
                    writeRow(k, kSeg[b], (r % br) * keyRowBytes, shape.keyDtype(), keys[h], r * d);
                    writeRow(v, vSeg[b], (r % br) * valueRowBytes, shape.valueDtype(), values[h], r * d);
                    continue;
                }
                long rowOffset = (r % br) * shape.rowBytes();
                if (shape.type().isQuantized()) {
                    // whole rows: quantised by the store's codec, the reference reads them back dequantised
                    float[] k = new float[d];
                    float[] v = new float[d];
                    for (int c = 0; c < d; c++) {
                        k[c] = unit(rnd) * keyScale;
                        v[c] = unit(rnd);
                    }
                    QuantCodec.write(k, 0, kSeg[b], rowOffset, d, shape.type());
                    QuantCodec.write(v, 0, vSeg[b], rowOffset, d, shape.type());
                    QuantCodec.read(kSeg[b], rowOffset, keys[h], r * d, d, shape.type());
                    QuantCodec.read(vSeg[b], rowOffset, values[h], r * d, d, shape.type());
                    continue;
                }
                for (int c = 0; c < d; c++) {
                    keys[h][r * d + c] = store(kSeg[b], rowOffset, c, unit(rnd) * keyScale);
                    values[h][r * d + c] = store(vSeg[b], rowOffset, c, unit(rnd));
                }
            }
        }
        offsets = arena.allocate(8L * (heads + 1), 8);
        lengthSegment = arena.allocate(8L * heads, 8);
        for (int h = 0; h <= heads; h++) {
            offsets.setAtIndex(JAVA_LONG, h, off[h]);
        }
        for (int h = 0; h < heads; h++) {
            lengthSegment.setAtIndex(JAVA_LONG, h, lengths[h]);
        }
    }

    /** Uniform with mean 0 and variance 1 (cheaper than a Gaussian; the tests build millions of elements). */
    static float unit(Random rnd) {
        return (rnd.nextFloat() * 2 - 1) * 1.7320508f;
    }

    /** Writes a row of {@code x.length} values as dtype {@code code}; the stored (dequantised) values go to dst. */
    private static void writeRow(float[] x, MemorySegment block, long rowOffset, int code, float[] dst, int at) {
        io.kvslab.DType type = io.kvslab.DType.ofCode(code);
        if (type.isQuantized()) {
            QuantCodec.write(x, 0, block, rowOffset, x.length, type);
            QuantCodec.read(block, rowOffset, dst, at, x.length, type);
            return;
        }
        for (int c = 0; c < x.length; c++) {
            dst[at + c] = store(block, rowOffset, c, x[c], code);
        }
    }

    /** Writes x in the shape's dtype and returns the value actually stored (dequantized). */
    private float store(MemorySegment block, long rowOffset, int c, float x) {
        return store(block, rowOffset, c, x, shape.dtype());
    }

    private static float store(MemorySegment block, long rowOffset, int c, float x, int code) {
        switch (code) {
            case 0 -> {
                block.set(JAVA_FLOAT_UNALIGNED, rowOffset + 4L * c, x);
                return x;
            }
            case 1 -> {
                short h = Float.floatToFloat16(x);
                block.set(JAVA_SHORT_UNALIGNED, rowOffset + 2L * c, h);
                return Float.float16ToFloat(h);
            }
            default -> {
                short h = toBf16(x);
                block.set(JAVA_SHORT_UNALIGNED, rowOffset + 2L * c, h);
                return Float.intBitsToFloat((h & 0xFFFF) << 16);
            }
        }
    }

    /** bfloat16 by round-to-nearest-even of the top 16 bits (inputs here are finite). */
    static short toBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /**
     * Reference attention in double precision for query heads of one token, over the first visible[h] rows of
     * each kv head. out[qh * D + c]; lse[qh] (-inf for no rows).
     */
    void reference(float[] q, int qOffset, float scale, long[] visible, double[] out, double[] lse) {
        int g = shape.group();
        int d = shape.headDim();
        for (int h = 0; h < shape.kvHeads(); h++) {
            int n = (int) visible[h];
            for (int j = 0; j < g; j++) {
                int qh = h * g + j;
                double[] s = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int r = 0; r < n; r++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) {
                        dot += (double) q[qOffset + qh * d + c] * keys[h][r * d + c];
                    }
                    s[r] = dot * scale;
                    max = Math.max(max, s[r]);
                }
                double sum = 0;
                for (int r = 0; r < n; r++) {
                    s[r] = Math.exp(s[r] - max);
                    sum += s[r];
                }
                for (int c = 0; c < d; c++) {
                    double o = 0;
                    for (int r = 0; r < n; r++) {
                        o += s[r] * values[h][r * d + c];
                    }
                    out[qh * d + c] = n == 0 ? 0 : o / sum;
                }
                lse[qh] = n == 0 ? Double.NEGATIVE_INFINITY : max + Math.log(sum);
            }
        }
    }
}
