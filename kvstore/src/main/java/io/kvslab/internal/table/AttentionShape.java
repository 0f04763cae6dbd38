package io.kvslab.internal.table;


import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

/**
 * Geometry of one attention kernel call: {@code kvHeads} KV heads, each read by {@code group} query heads
 * (query head {@code qh} uses KV head {@code qh / group}), rows of {@code headDim} elements of the dtype with code
 * {@code dtype} (0 = f32, 1 = f16, 2 = bf16, 3 = q8_0, 4 = q4_0; {@link io.kvslab.DType#code()}), {@code blockRows}
 * rows per block. Rows are {@link #rowBytes()} bytes (quantised types: groups with their scales).
 */
public record AttentionShape(int kvHeads, int group, int headDim, int dtype, int blockRows) {
    /** Upper bound of every dimension; keeps all native index arithmetic far from overflow. */
    public static final int MAX_DIMENSION = 65536;

    public AttentionShape {
        dimension("kvHeads", kvHeads);
        dimension("group", group);
        dimension("headDim", headDim);
        dimension("blockRows", blockRows);
        long queryHeads = (long) kvHeads * group;
        if (queryHeads > MAX_DIMENSION) {
            throw new KernelArgumentException("query heads (kvHeads " + kvHeads + " x group " + group + " = "
                    + queryHeads + ") must be <= " + MAX_DIMENSION);
        }
        DType type = DType.ofCode(dtype);
        if (type == null) {
            throw new KernelArgumentException("dtype code must be 0 (f32), 1 (f16), 2 (bf16), 3 (q8_0) or 4 (q4_0), "
                    + "got " + dtype);
        }
        try {
            type.checkHeadDim(headDim);
        } catch (KvArgumentException e) {
            throw new KernelArgumentException(e.getMessage());
        }
    }

    /** The shape of one layer of a store with this layout. */
    public static AttentionShape of(KvLayout layout) {
        return new AttentionShape(layout.kvHeads(), layout.groupSize(), layout.headDim(), layout.dtype().code(),
                layout.tokensPerBlock());
    }

    /** Query heads: {@code kvHeads * group} (at most {@value #MAX_DIMENSION}, checked at construction). */
    public int queryHeads() {
        return kvHeads * group;
    }

    /** Bytes of one stored row. */
    public long rowBytes() {
        return DType.ofCode(dtype).rowBytes(headDim);
    }

    /** The stored element type. */
    public DType type() {
        return DType.ofCode(dtype);
    }

    /** Floats of one token's queries (or outputs) across all query heads. */
    public long tokenFloats() {
        return Math.multiplyExact((long) queryHeads(), (long) headDim);
    }

    private static void dimension(String name, int v) {
        if (v <= 0 || v > MAX_DIMENSION) {
            throw new KernelArgumentException(name + " must be in [1, " + MAX_DIMENSION + "], got " + v);
        }
    }
}
