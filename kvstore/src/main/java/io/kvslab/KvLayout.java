package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Geometry of a model's KV cache and of the store's blocks.
 *
 * @param layers          transformer layers
 * @param queryHeads      attention (query) heads per layer
 * @param kvHeads         key/value heads per layer; {@code queryHeads} must be a multiple (GQA)
 * @param headDim         elements per head vector
 * @param dtype           element type of stored rows
 * @param tokensPerBlock  rows per block (a block holds K, or V, rows of one (layer, KV head))
 */
public record KvLayout(int layers, int queryHeads, int kvHeads, int headDim, DType dtype, int tokensPerBlock) {
    public static final int DEFAULT_TOKENS_PER_BLOCK = 32;

    public KvLayout {
        positive("layers", layers);
        positive("queryHeads", queryHeads);
        positive("kvHeads", kvHeads);
        positive("headDim", headDim);
        positive("tokensPerBlock", tokensPerBlock);
        if (dtype == null) {
            throw new KvArgumentException("dtype must be one of F32, F16, BF16, got null");
        }
        if (queryHeads % kvHeads != 0) {
            throw new KvArgumentException("queryHeads (" + queryHeads + ") must be a multiple of kvHeads (" + kvHeads + ")");
        }
        if (headDim > 65536 || tokensPerBlock > 65536) {
            throw new KvArgumentException("headDim and tokensPerBlock must be <= 65536, got " + headDim + " and " + tokensPerBlock);
        }
    }

    /** A layout with {@value #DEFAULT_TOKENS_PER_BLOCK} tokens per block. */
    public static KvLayout of(int layers, int queryHeads, int kvHeads, int headDim, DType dtype) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, dtype, DEFAULT_TOKENS_PER_BLOCK);
    }

    /** Query heads per KV head; query head {@code qh} reads KV head {@code qh / groupSize()}. */
    public int groupSize() {
        return queryHeads / kvHeads;
    }

    /** Bytes of one K (or V) row. */
    public long rowBytes() {
        return (long) headDim * dtype.bytes();
    }

    /** Bytes of one block. */
    public long blockBytes() {
        return rowBytes() * tokensPerBlock;
    }

    /** Bytes of K and V for one token across all layers and KV heads (the dense cost of a token). */
    public long bytesPerToken() {
        return 2L * layers * kvHeads * rowBytes();
    }

    private static void positive(String name, int v) {
        if (v <= 0) {
            throw new KvArgumentException(name + " must be > 0, got " + v);
        }
    }
}
