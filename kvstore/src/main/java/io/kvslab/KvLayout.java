package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Geometry of a model's KV cache and of the store's blocks.
 *
 * @param layers          transformer layers
 * @param queryHeads      attention (query) heads per layer
 * @param kvHeads         key/value heads per layer; {@code queryHeads} must be a multiple (GQA)
 * @param headDim         elements per head vector
 * @param dtype           element type of stored rows (a quantised type constrains headDim: {@link DType#checkHeadDim})
 * @param tokensPerBlock  rows per block (a block holds K, or V, rows of one (layer, KV head))
 */
public record KvLayout(int layers, int queryHeads, int kvHeads, int headDim, DType dtype, int tokensPerBlock) {
    public static final int DEFAULT_TOKENS_PER_BLOCK = 32;
    /** Most layers a layout may have. */
    public static final int MAX_LAYERS = 4096;
    /** Most query (and KV) heads per layer; also the attention kernels' bound. */
    public static final int MAX_HEADS = 65536;
    /** Most elements per head vector, and most rows per block. */
    public static final int MAX_DIMENSION = 65536;
    /**
     * Most (layer, KV head) block tables per sequence: every sequence keeps this many tables on the heap, so the
     * product is bounded before any sequence is created (2^20 tables are a few hundred MiB of heap).
     */
    public static final long MAX_TABLES = 1L << 20;
    /** Largest block (rowBytes x tokensPerBlock). */
    public static final long MAX_BLOCK_BYTES = 1L << 30;
    /** Most floats of one token's queries or outputs (queryHeads x headDim), so they fit a Java array. */
    public static final long MAX_TOKEN_FLOATS = 1L << 28;

    /**
     * Checks every bound: positive counts, {@code queryHeads} a multiple of {@code kvHeads}, a head dim the dtype can
     * store, and the limits {@link #MAX_LAYERS}, {@link #MAX_HEADS}, {@link #MAX_DIMENSION}, {@link #MAX_TABLES},
     * {@link #MAX_BLOCK_BYTES} and {@link #MAX_TOKEN_FLOATS}.
     *
     * @throws KvArgumentException naming the first value out of range and what is allowed
     */
    public KvLayout {
        positive("layers", layers);
        positive("queryHeads", queryHeads);
        positive("kvHeads", kvHeads);
        positive("headDim", headDim);
        positive("tokensPerBlock", tokensPerBlock);
        if (dtype == null) {
            throw new KvArgumentException("dtype must be one of F32, F16, BF16, Q8_0, Q4_0, got null");
        }
        dtype.checkHeadDim(headDim);
        if (queryHeads % kvHeads != 0) {
            throw new KvArgumentException("queryHeads (" + queryHeads + ") must be a multiple of kvHeads (" + kvHeads + ")");
        }
        atMost("layers", layers, MAX_LAYERS);
        atMost("queryHeads", queryHeads, MAX_HEADS);
        atMost("headDim", headDim, MAX_DIMENSION);
        atMost("tokensPerBlock", tokensPerBlock, MAX_DIMENSION);
        long tables = (long) layers * kvHeads;
        if (tables > MAX_TABLES) {
            throw new KvArgumentException("layers x kvHeads = " + layers + " x " + kvHeads + " = " + tables
                    + " block tables per sequence; at most " + MAX_TABLES + " are allowed");
        }
        long blockBytes = dtype.rowBytes(headDim) * tokensPerBlock;   // both factors <= 2^18: no overflow
        if (blockBytes > MAX_BLOCK_BYTES) {
            throw new KvArgumentException("a block of " + dtype.rowBytes(headDim) + " bytes per row (headDim "
                    + headDim + " as " + dtype + ") x " + tokensPerBlock + " tokens = " + blockBytes
                    + " bytes; at most " + MAX_BLOCK_BYTES + " are allowed");
        }
        long tokenFloats = (long) queryHeads * headDim;
        if (tokenFloats > MAX_TOKEN_FLOATS) {
            throw new KvArgumentException("queryHeads x headDim = " + tokenFloats + " floats per token; at most "
                    + MAX_TOKEN_FLOATS + " are allowed");
        }
    }

    /**
     * A layout with {@value #DEFAULT_TOKENS_PER_BLOCK} tokens per block.
     *
     * @param layers transformer layers, {@code >= 1}
     * @param queryHeads query heads per layer, {@code >= 1}
     * @param kvHeads KV heads per layer, {@code >= 1}, dividing {@code queryHeads}
     * @param headDim elements per head vector, {@code >= 1}
     * @param dtype element type of stored rows
     * @return the layout
     */
    public static KvLayout of(int layers, int queryHeads, int kvHeads, int headDim, DType dtype) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, dtype, DEFAULT_TOKENS_PER_BLOCK);
    }

    /**
     * Query heads per KV head; query head {@code qh} reads KV head {@code qh / groupSize()}.
     *
     * @return {@code queryHeads / kvHeads}, {@code >= 1}
     */
    public int groupSize() {
        return queryHeads / kvHeads;
    }

    /**
     * Bytes of one K (or V) row: {@code dtype.rowBytes(headDim)} (groups and their scales for quantised types).
     *
     * @return bytes per row
     */
    public long rowBytes() {
        return dtype.rowBytes(headDim);
    }

    /**
     * Bytes of one block.
     *
     * @return {@code rowBytes() * tokensPerBlock}, at most {@link #MAX_BLOCK_BYTES}
     */
    public long blockBytes() {
        return rowBytes() * tokensPerBlock;
    }

    /**
     * Bytes of K and V for one token across all layers and KV heads (the dense cost of a token).
     *
     * @return {@code 2 * layers * kvHeads * rowBytes()}
     */
    public long bytesPerToken() {
        return 2L * layers * kvHeads * rowBytes();
    }

    private static void atMost(String name, int v, long max) {
        if (v > max) {
            throw new KvArgumentException(name + " must be <= " + max + ", got " + v);
        }
    }

    private static void positive(String name, int v) {
        if (v <= 0) {
            throw new KvArgumentException(name + " must be > 0, got " + v);
        }
    }
}
