package io.kvslab.internal.table;


import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

/**
 * Geometry of one attention kernel call: {@code kvHeads} KV heads, each read by {@code group} query heads
 * (query head {@code qh} uses KV head {@code qh / group}), K rows of {@code headDim} elements of the dtype with code
 * {@code keyDtype} and V rows of {@code valueDtype} (0 = f32, 1 = f16, 2 = bf16, 3 = q8_0, 4 = q4_0;
 * {@link io.kvslab.DType#code()}), {@code blockRows} rows per block. Rows are {@link #keyRowBytes()} /
 * {@link #valueRowBytes()} bytes (quantised types: groups with their scales).
 *
 * <p>{@code quantisedQuery}: decode scores of q8_0 / q4_0 K rows (head dim a multiple of 32) with the query
 * quantised to q8_0 and integer dot products ({@link #quantisedScores()}); prefill and other K types ignore it.
 */
public record AttentionShape(int kvHeads, int group, int headDim, int keyDtype, int valueDtype, int blockRows,
                             boolean quantisedQuery) {
    /** Upper bound of every dimension; keeps all native index arithmetic far from overflow. */
    public static final int MAX_DIMENSION = 65536;

    /** The kernel's flag on a decode call's K dtype code for the integer-query path ({@code KVS_QUERY_Q8_0}). */
    static final int QUERY_Q8_0_FLAG = 0x100;

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
        for (int code : new int[] {keyDtype, valueDtype}) {
            DType type = DType.ofCode(code);
            if (type == null) {
                throw new KernelArgumentException("dtype code (" + (code == keyDtype ? "K" : "V") + ") must be 0 (f32), "
                        + "1 (f16), 2 (bf16), 3 (q8_0) or 4 (q4_0), got " + code);
            }
            try {
                type.checkHeadDim(headDim);
            } catch (KvArgumentException e) {
                throw new KernelArgumentException(e.getMessage());
            }
        }
    }

    /** A shape with exact (f32-query) scores. */
    public AttentionShape(int kvHeads, int group, int headDim, int keyDtype, int valueDtype, int blockRows) {
        this(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, false);
    }

    /** This shape with the query precision of decode scores set: {@code true} for the integer-query path. */
    public AttentionShape withQuantisedQuery(boolean quantised) {
        return quantised == quantisedQuery ? this
                : new AttentionShape(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, quantised);
    }

    /**
     * Whether decode scores take the integer-query path: asked for, K rows q8_0 or q4_0, and head dim a multiple of
     * 32 (at most 1024), which is where the kernel has it; otherwise scores are exact.
     */
    public boolean quantisedScores() {
        DType k = DType.ofCode(keyDtype);
        return quantisedQuery && (k == DType.Q8_0 || k == DType.Q4_0) && headDim % 32 == 0 && headDim <= 1024;
    }

    /** The K dtype code a decode call passes to the kernel: with the integer-query flag when it applies. */
    int decodeKeyArgument() {
        return quantisedScores() ? keyDtype | QUERY_Q8_0_FLAG : keyDtype;
    }

    /** A shape whose K and V rows are both of dtype code {@code dtype}. */
    public AttentionShape(int kvHeads, int group, int headDim, int dtype, int blockRows) {
        this(kvHeads, group, headDim, dtype, dtype, blockRows);
    }

    /** The shape of one layer of a store with this layout. */
    public static AttentionShape of(KvLayout layout) {
        return new AttentionShape(layout.kvHeads(), layout.groupSize(), layout.headDim(), layout.keyDtype().code(),
                layout.valueDtype().code(), layout.tokensPerBlock());
    }

    /** The dtype code of K and V rows when they are the same; throws {@link KernelArgumentException} otherwise. */
    public int dtype() {
        if (keyDtype != valueDtype) {
            throw new KernelArgumentException("K rows (dtype " + keyDtype + ") and V rows (dtype " + valueDtype
                    + ") differ: use keyDtype() / valueDtype()");
        }
        return keyDtype;
    }

    /** Bytes of one stored K row. */
    public long keyRowBytes() {
        return DType.ofCode(keyDtype).rowBytes(headDim);
    }

    /** Bytes of one stored V row. */
    public long valueRowBytes() {
        return DType.ofCode(valueDtype).rowBytes(headDim);
    }

    /** The stored K element type. */
    public DType keyType() {
        return DType.ofCode(keyDtype);
    }

    /** The stored V element type. */
    public DType valueType() {
        return DType.ofCode(valueDtype);
    }

    /** Query heads: {@code kvHeads * group} (at most {@value #MAX_DIMENSION}, checked at construction). */
    public int queryHeads() {
        return kvHeads * group;
    }

    /** Bytes of one stored row when K and V types are the same (see {@link #dtype()}). */
    public long rowBytes() {
        return DType.ofCode(dtype()).rowBytes(headDim);
    }

    /** The stored element type when K and V types are the same (see {@link #dtype()}). */
    public DType type() {
        return DType.ofCode(dtype());
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
