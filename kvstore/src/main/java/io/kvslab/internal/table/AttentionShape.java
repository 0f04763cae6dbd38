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
 * <p>{@code quantisedQuery}: decode scores of q8_0 / q4_0 K rows with the query quantised to q8_0 (groups of
 * {@code min(32, headDim)} values) and integer dot products ({@link #quantisedScores()}); prefill and other K types
 * ignore it. {@code integerValues}: decode outputs of q8_0 / q4_0 V rows as integer sums of 8-bit softmax weights
 * times the V codes ({@link #integerValueSums()}); prefill and other V types ignore it.
 */
public record AttentionShape(int kvHeads, int group, int headDim, int keyDtype, int valueDtype, int blockRows,
                             boolean quantisedQuery, boolean integerValues) {
    /** Upper bound of every dimension; keeps all native index arithmetic far from overflow. */
    public static final int MAX_DIMENSION = 65536;

    /** The kernel's flag on a decode call's K dtype code for the integer-query path ({@code KVS_QUERY_Q8_0}). */
    static final int QUERY_Q8_0_FLAG = 0x100;

    /** The kernel's flag on a decode call's V dtype code for the integer value path ({@code KVS_VALUE_INT8}). */
    static final int VALUE_INT8_FLAG = 0x200;

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

    /** A shape with exact (f32-query) scores and f32 value sums. */
    public AttentionShape(int kvHeads, int group, int headDim, int keyDtype, int valueDtype, int blockRows) {
        this(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, false, false);
    }

    /** A shape with the query precision of decode scores chosen and f32 value sums. */
    public AttentionShape(int kvHeads, int group, int headDim, int keyDtype, int valueDtype, int blockRows,
                          boolean quantisedQuery) {
        this(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, quantisedQuery, false);
    }

    /** This shape with the query precision of decode scores set: {@code true} for the integer-query path. */
    public AttentionShape withQuantisedQuery(boolean quantised) {
        return quantised == quantisedQuery ? this
                : new AttentionShape(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, quantised,
                        integerValues);
    }

    /** This shape with the precision of decode value sums set: {@code true} for the integer value path. */
    public AttentionShape withIntegerValues(boolean integer) {
        return integer == integerValues ? this
                : new AttentionShape(kvHeads, group, headDim, keyDtype, valueDtype, blockRows, quantisedQuery,
                        integer);
    }

    /**
     * Whether decode scores take the integer-query path: asked for and K rows q8_0 or q4_0 (whose head dims are a
     * multiple of 32 or below 32, one group per row; the kernel's group-wise loops take at most 1024); otherwise
     * scores are exact.
     */
    public boolean quantisedScores() {
        return quantisedQuery && integerRows(DType.ofCode(keyDtype));
    }

    /**
     * Whether decode outputs take the integer value path: asked for and V rows q8_0 or q4_0 (head dims as for
     * {@link #quantisedScores()}); otherwise values are summed in f32.
     */
    public boolean integerValueSums() {
        return integerValues && integerRows(DType.ofCode(valueDtype));
    }

    private boolean integerRows(DType t) {
        return (t == DType.Q8_0 || t == DType.Q4_0) && (headDim % 32 == 0 && headDim <= 1024 || headDim < 32);
    }

    /** The K dtype code a decode call passes to the kernel: with the integer-query flag when it applies. */
    int decodeKeyArgument() {
        return quantisedScores() ? keyDtype | QUERY_Q8_0_FLAG : keyDtype;
    }

    /** The V dtype code a decode call passes to the kernel: with the integer value flag when it applies. */
    int decodeValueArgument() {
        return integerValueSums() ? valueDtype | VALUE_INT8_FLAG : valueDtype;
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
