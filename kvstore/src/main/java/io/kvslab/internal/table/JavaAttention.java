package io.kvslab.internal.table;

import io.kvslab.DType;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The plain-Java attention path: the same contract as the native kernel ({@code kvs_attn_decode} /
 * {@code kvs_attn_prefill}), used where the native library cannot load (another OS or architecture, a CPU without
 * AVX2/FMA/F16C, or {@code -Dkvslab.native.disable=true}). Arguments arrive already validated by the binding and
 * the block tables are read under the same lifetime guard as for the native call.
 *
 * <p>Exact softmax per query head (max-subtracted, sums in double); one thread. Slower than the kernel, never
 * different in meaning.
 */
final class JavaAttention {
    private JavaAttention() {}

    /** Decode: every query head attends over every row of its KV head. */
    static void decode(AttentionShape shape, MemorySegment q, MemorySegment keyBlocks, MemorySegment valueBlocks,
                       MemorySegment offsets, MemorySegment lengths, float scale, MemorySegment out,
                       MemorySegment lse) {
        Blocks blocks = new Blocks(shape, keyBlocks, valueBlocks);
        int dim = shape.headDim();
        float[] qv = new float[dim];
        double[] acc = new double[dim];
        for (int h = 0; h < shape.kvHeads(); h++) {
            long first = offsets.getAtIndex(JAVA_LONG, h);
            long rows = lengths.getAtIndex(JAVA_LONG, h);
            for (int g = 0; g < shape.group(); g++) {
                int qh = h * shape.group() + g;
                MemorySegment.copy(q, JAVA_FLOAT, (long) qh * dim * Float.BYTES, qv, 0, dim);
                double l = shape.quantisedScores() ? attend(blocks, first, rows, QueryQ8.of(qv, scale), acc)
                        : attend(blocks, first, rows, qv, scale, acc);
                for (int d = 0; d < dim; d++) {
                    out.setAtIndex(JAVA_FLOAT, (long) qh * dim + d, (float) acc[d]);
                }
                if (lse != null && !lse.equals(MemorySegment.NULL)) {
                    lse.setAtIndex(JAVA_FLOAT, qh, (float) l);
                }
            }
        }
    }

    /** Causal prefill: query token {@code i} of KV head {@code h} sees rows {@code 0 .. lengths[h] - n + i}. */
    static void prefill(AttentionShape shape, int n, MemorySegment q, MemorySegment keyBlocks,
                        MemorySegment valueBlocks, MemorySegment offsets, MemorySegment lengths, float scale,
                        MemorySegment out) {
        Blocks blocks = new Blocks(shape, keyBlocks, valueBlocks);
        int dim = shape.headDim();
        long tokenFloats = (long) shape.queryHeads() * dim;
        float[] qv = new float[dim];
        double[] acc = new double[dim];
        for (int h = 0; h < shape.kvHeads(); h++) {
            long first = offsets.getAtIndex(JAVA_LONG, h);
            long rows = lengths.getAtIndex(JAVA_LONG, h);
            for (int i = 0; i < n; i++) {
                long visible = rows - n + i + 1;
                for (int g = 0; g < shape.group(); g++) {
                    int qh = h * shape.group() + g;
                    long base = i * tokenFloats + (long) qh * dim;
                    MemorySegment.copy(q, JAVA_FLOAT, base * Float.BYTES, qv, 0, dim);
                    attend(blocks, first, visible, qv, scale, acc);
                    for (int d = 0; d < dim; d++) {
                        out.setAtIndex(JAVA_FLOAT, base + d, (float) acc[d]);
                    }
                }
            }
        }
    }

    /**
     * Softmax attention of one query vector over the first {@code rows} rows of a head whose blocks start at
     * table index {@code first}; writes the output into {@code acc} and returns the log-sum-exp of the scaled
     * scores ({@code -Infinity} and zeros for no rows).
     */
    private static double attend(Blocks b, long first, long rows, float[] q, float scale, double[] acc) {
        java.util.Arrays.fill(acc, 0);
        if (rows == 0) {
            return Double.NEGATIVE_INFINITY;
        }
        int dim = q.length;
        double[] scores = new double[Math.toIntExact(rows)];
        float[] row = new float[dim];
        for (long r = 0; r < rows; r++) {
            b.keyRow(b.key(first, r), b.keyOffset(r), row);
            double s = 0;
            for (int d = 0; d < dim; d++) {
                s += (double) q[d] * row[d];
            }
            scores[(int) r] = s * scale;
        }
        return softmaxValues(b, first, rows, scores, acc);
    }

    /** The same with the integer-query scores of {@link AttentionShape#quantisedScores()}. */
    private static double attend(Blocks b, long first, long rows, QueryQ8 q, double[] acc) {
        java.util.Arrays.fill(acc, 0);
        if (rows == 0) {
            return Double.NEGATIVE_INFINITY;
        }
        double[] scores = new double[Math.toIntExact(rows)];
        for (long r = 0; r < rows; r++) {
            scores[(int) r] = q.score(b.key(first, r), b.keyOffset(r), b.keyDtype);
        }
        return softmaxValues(b, first, rows, scores, acc);
    }

    /** Softmax of the scaled scores and the weighted sum of the V rows into {@code acc}; returns the lse. */
    private static double softmaxValues(Blocks b, long first, long rows, double[] scores, double[] acc) {
        if (b.integerValues) {
            return IntegerValues.softmaxValues(b, first, rows, scores, acc);
        }
        int dim = acc.length;
        float[] row = new float[dim];
        double max = Double.NEGATIVE_INFINITY;
        for (double s : scores) {
            max = Math.max(max, s);
        }
        double sum = 0;
        for (long r = 0; r < rows; r++) {
            double p = Math.exp(scores[(int) r] - max);
            sum += p;
            b.valueRow(b.value(first, r), b.valueOffset(r), row);
            for (int d = 0; d < dim; d++) {
                acc[d] += p * row[d];
            }
        }
        for (int d = 0; d < dim; d++) {
            acc[d] /= sum;
        }
        return max + Math.log(sum);
    }

    /**
     * A query head multiplied by the softmax scale and quantised to q8_0 as the kernel does it: per 32-value group
     * {@code d = amax / 127} (f32), codes {@code rint(x / d)}; a score is {@code sum_j (d_j * dk_j) * I_j} with
     * {@code I_j} the exact integer dot product of the group's codes with the key's codes (q4_0: code - 8).
     */
    record QueryQ8(byte[] codes, float[] scales) {
        static QueryQ8 of(float[] q, float scale) {
            int n = Math.min(32, q.length); // a head dim below 32 is one group, as the store quantises it
            int groups = q.length / n;
            byte[] codes = new byte[q.length];
            float[] scales = new float[groups];
            for (int j = 0; j < groups; j++) {
                float[] x = new float[n];
                float amax = 0;
                for (int i = 0; i < n; i++) {
                    x[i] = q[n * j + i] * scale;
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                float d = amax / 127.0f;
                float id = d != 0 ? 1.0f / d : 0;
                for (int i = 0; i < n; i++) {
                    codes[n * j + i] = (byte) Math.clamp((long) Math.rint(x[i] * id), -127, 127);
                }
                scales[j] = d;
            }
            return new QueryQ8(codes, scales);
        }

        double score(MemorySegment block, long offset, DType keyType) {
            int n = codes.length / scales.length;
            long groupBytes = keyType.rowBytes(n);
            double s = 0;
            for (int j = 0; j < scales.length; j++) {
                long g = offset + j * groupBytes;
                float dk = Float.float16ToFloat(block.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, g));
                long dot = 0;
                for (int i = 0; i < n; i++) {
                    dot += (long) codes[n * j + i] * code(block, g, i, n, keyType);
                }
                s += (double) (scales[j] * dk) * dot;
            }
            return s;
        }
    }

    /**
     * Code {@code i} of the quantised group of {@code n} values at {@code g} (after its f16 scale): q8_0 the signed
     * byte, q4_0 the nibble minus 8 (byte {@code i} low nibble for {@code i < n/2}, else byte {@code i - n/2} high).
     */
    static int code(MemorySegment block, long g, int i, int n, DType type) {
        if (type == DType.Q8_0) {
            return block.get(java.lang.foreign.ValueLayout.JAVA_BYTE, g + 2 + i);
        }
        int half = n / 2;
        int bits = block.get(java.lang.foreign.ValueLayout.JAVA_BYTE, g + 2 + (i % half)) & 0xff;
        return (i < half ? bits & 15 : bits >>> 4) - 8;
    }

    /** Block memory named by the address tables, K rows read with the K type and V rows with the V type. */
    static final class Blocks {
        private final MemorySegment keyBlocks;
        private final MemorySegment valueBlocks;
        private final DType keyDtype;
        final DType valueDtype;
        final int blockRows;
        private final long keyRowBytes;
        private final long valueRowBytes;
        final boolean integerValues;

        Blocks(AttentionShape shape, MemorySegment keyBlocks, MemorySegment valueBlocks) {
            this.integerValues = shape.integerValueSums();
            this.keyBlocks = keyBlocks;
            this.valueBlocks = valueBlocks;
            this.keyDtype = shape.keyType();
            this.valueDtype = shape.valueType();
            this.blockRows = shape.blockRows();
            this.keyRowBytes = shape.keyRowBytes();
            this.valueRowBytes = shape.valueRowBytes();
        }

        MemorySegment key(long first, long row) {
            return block(keyBlocks, first + row / blockRows, keyRowBytes * blockRows);
        }

        MemorySegment value(long first, long row) {
            return block(valueBlocks, first + row / blockRows, valueRowBytes * blockRows);
        }

        long keyOffset(long row) {
            return (row % blockRows) * keyRowBytes;
        }

        long valueOffset(long row) {
            return (row % blockRows) * valueRowBytes;
        }

        private static MemorySegment block(MemorySegment table, long index, long blockBytes) {
            // The address comes from the store's own block table, read under its lifetime guard.
            return SlabMemory.at(table.getAtIndex(JAVA_LONG, index), blockBytes);
        }

        /** One stored K row, dequantised (or widened) to fp32, exactly as the store's readers see it. */
        void keyRow(MemorySegment block, long rowOffset, float[] dst) {
            RowCodec.read(block, rowOffset, dst, 0, dst.length, keyDtype);
        }

        /** One stored V row, likewise with the V type. */
        void valueRow(MemorySegment block, long rowOffset, float[] dst) {
            RowCodec.read(block, rowOffset, dst, 0, dst.length, valueDtype);
        }
    }
}
