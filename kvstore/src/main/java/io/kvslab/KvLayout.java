package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Geometry of a model's KV cache and of the store's blocks.
 *
 * <p>K and V rows may be stored as different types (as llama.cpp's {@code --cache-type-k} / {@code --cache-type-v}):
 * every pair of {@link DType}s is allowed, each must accept {@code headDim} ({@link DType#checkHeadDim}). Their rows
 * then differ in bytes, so the geometry is per side: {@link #keyRowBytes()} / {@link #valueRowBytes()},
 * {@link #keyBlockBytes()} / {@link #valueBlockBytes()}; the single-type accessors {@link #dtype()},
 * {@link #rowBytes()} and {@link #blockBytes()} exist only for layouts whose K and V types are the same.
 *
 * @param layers          transformer layers
 * @param queryHeads      attention (query) heads per layer
 * @param kvHeads         key/value heads per layer; {@code queryHeads} must be a multiple (GQA)
 * @param headDim         elements per head vector
 * @param keyDtype        element type of stored K rows (a quantised type constrains headDim: {@link DType#checkHeadDim})
 * @param valueDtype      element type of stored V rows
 * @param tokensPerBlock  rows per block (a block holds K, or V, rows of one (layer, KV head))
 */
public record KvLayout(int layers, int queryHeads, int kvHeads, int headDim, DType keyDtype, DType valueDtype,
                       int tokensPerBlock) {
    /** Rows per block when a layout does not say: 32, as vLLM's default block size on GPUs is 16-32. */
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
     * Checks every bound: positive counts, {@code queryHeads} a multiple of {@code kvHeads}, a head dim each dtype can
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
        if (keyDtype == null || valueDtype == null) {
            throw new KvArgumentException("keyDtype and valueDtype must each be one of F32, F16, BF16, Q8_0, Q4_0, got "
                    + keyDtype + " / " + valueDtype);
        }
        checkSide("K", keyDtype, headDim);
        checkSide("V", valueDtype, headDim);
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
        for (DType dtype : new DType[] {keyDtype, valueDtype}) {
            long blockBytes = dtype.rowBytes(headDim) * tokensPerBlock;   // both factors <= 2^18: no overflow
            if (blockBytes > MAX_BLOCK_BYTES) {
                throw new KvArgumentException("a block of " + dtype.rowBytes(headDim) + " bytes per row (headDim "
                        + headDim + " as " + dtype + ") x " + tokensPerBlock + " tokens = " + blockBytes
                        + " bytes; at most " + MAX_BLOCK_BYTES + " are allowed");
            }
        }
        long tokenFloats = (long) queryHeads * headDim;
        if (tokenFloats > MAX_TOKEN_FLOATS) {
            throw new KvArgumentException("queryHeads x headDim = " + tokenFloats + " floats per token; at most "
                    + MAX_TOKEN_FLOATS + " are allowed");
        }
    }

    /**
     * A layout storing K and V rows both as {@code dtype}.
     *
     * @param layers transformer layers, {@code >= 1}
     * @param queryHeads query heads per layer, {@code >= 1}
     * @param kvHeads KV heads per layer, {@code >= 1}, dividing {@code queryHeads}
     * @param headDim elements per head vector, {@code >= 1}
     * @param dtype element type of stored K and V rows
     * @param tokensPerBlock rows per block, {@code >= 1}
     * @throws KvArgumentException as the canonical constructor
     */
    public KvLayout(int layers, int queryHeads, int kvHeads, int headDim, DType dtype, int tokensPerBlock) {
        this(layers, queryHeads, kvHeads, headDim, dtype, dtype, tokensPerBlock);
    }

    /**
     * A layout with {@value #DEFAULT_TOKENS_PER_BLOCK} tokens per block, K and V both {@code dtype}.
     *
     * @param layers transformer layers, {@code >= 1}
     * @param queryHeads query heads per layer, {@code >= 1}
     * @param kvHeads KV heads per layer, {@code >= 1}, dividing {@code queryHeads}
     * @param headDim elements per head vector, {@code >= 1}
     * @param dtype element type of stored K and V rows
     * @return the layout
     * @throws KvArgumentException as the canonical constructor
     */
    public static KvLayout of(int layers, int queryHeads, int kvHeads, int headDim, DType dtype) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, dtype, DEFAULT_TOKENS_PER_BLOCK);
    }

    /**
     * A layout with {@value #DEFAULT_TOKENS_PER_BLOCK} tokens per block, K rows as {@code keyDtype}, V as
     * {@code valueDtype}.
     *
     * @param layers transformer layers, {@code >= 1}
     * @param queryHeads query heads per layer, {@code >= 1}
     * @param kvHeads KV heads per layer, {@code >= 1}, dividing {@code queryHeads}
     * @param headDim elements per head vector, {@code >= 1}
     * @param keyDtype element type of stored K rows
     * @param valueDtype element type of stored V rows
     * @return the layout
     * @throws KvArgumentException as the canonical constructor
     */
    public static KvLayout of(int layers, int queryHeads, int kvHeads, int headDim, DType keyDtype, DType valueDtype) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, keyDtype, valueDtype, DEFAULT_TOKENS_PER_BLOCK);
    }

    /**
     * This layout with K rows as {@code keyDtype} and V rows as {@code valueDtype}.
     *
     * @param keyDtype element type of stored K rows
     * @param valueDtype element type of stored V rows
     * @return a new layout with the same geometry
     * @throws KvArgumentException if a dtype cannot store rows of this head dim
     */
    public KvLayout withDtypes(DType keyDtype, DType valueDtype) {
        return new KvLayout(layers, queryHeads, kvHeads, headDim, keyDtype, valueDtype, tokensPerBlock);
    }

    /**
     * Whether K and V rows are stored as the same type.
     *
     * @return {@code keyDtype() == valueDtype()}
     */
    public boolean uniformDtype() {
        return keyDtype == valueDtype;
    }

    /**
     * The type of K and V rows when they are the same; throws {@link KvArgumentException} for a layout whose K
     * and V types differ (use {@link #keyDtype()} / {@link #valueDtype()}).
     *
     * @return the one dtype of K and V rows
     * @throws KvArgumentException if K and V types differ
     */
    public DType dtype() {
        requireUniform("dtype()");
        return keyDtype;
    }

    /**
     * The dtype of one side.
     *
     * @param keys {@code true} for K rows, {@code false} for V rows
     * @return that side's dtype
     */
    public DType dtype(boolean keys) {
        return keys ? keyDtype : valueDtype;
    }

    /**
     * Bytes of one stored K row.
     *
     * @return {@code keyDtype.rowBytes(headDim)}
     */
    public long keyRowBytes() {
        return keyDtype.rowBytes(headDim);
    }

    /**
     * Bytes of one stored V row.
     *
     * @return {@code valueDtype.rowBytes(headDim)}
     */
    public long valueRowBytes() {
        return valueDtype.rowBytes(headDim);
    }

    /**
     * Bytes of one row of a side.
     *
     * @param keys {@code true} for K rows, {@code false} for V rows
     * @return that side's bytes per row
     */
    public long rowBytes(boolean keys) {
        return keys ? keyRowBytes() : valueRowBytes();
    }

    /**
     * Bytes of one K block.
     *
     * @return {@code tokensPerBlock x keyRowBytes()}, at most {@link #MAX_BLOCK_BYTES}
     */
    public long keyBlockBytes() {
        return keyRowBytes() * tokensPerBlock;
    }

    /**
     * Bytes of one V block.
     *
     * @return {@code tokensPerBlock x valueRowBytes()}, at most {@link #MAX_BLOCK_BYTES}
     */
    public long valueBlockBytes() {
        return valueRowBytes() * tokensPerBlock;
    }

    /**
     * Bytes of one block of a side.
     *
     * @param keys {@code true} for K blocks, {@code false} for V blocks
     * @return that side's bytes per block
     */
    public long blockBytes(boolean keys) {
        return keys ? keyBlockBytes() : valueBlockBytes();
    }

    /**
     * Bytes of one K block plus one V block: what a table's block index holds.
     *
     * @return {@code keyBlockBytes() + valueBlockBytes()}
     */
    public long blockPairBytes() {
        return keyBlockBytes() + valueBlockBytes();
    }

    /**
     * A short name of the types, in the CLI's syntax.
     *
     * @return {@code q8_0} when K and V types are the same, {@code q8_0/q4_0} (K/V) otherwise
     */
    public String dtypeName() {
        String k = keyDtype.name().toLowerCase(java.util.Locale.ROOT);
        return uniformDtype() ? k : k + "/" + valueDtype.name().toLowerCase(java.util.Locale.ROOT);
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
     * Bytes of one K (or V) row when K and V types are the same: {@code dtype.rowBytes(headDim)} (groups and their
     * scales for quantised types). Throws {@link KvArgumentException} when they differ: use {@link #keyRowBytes()}
     * / {@link #valueRowBytes()}.
     *
     * @return bytes per row
     * @throws KvArgumentException if K and V types differ
     */
    public long rowBytes() {
        requireUniform("rowBytes()");
        return keyRowBytes();
    }

    /**
     * Bytes of one block when K and V types are the same (else use {@link #keyBlockBytes()} /
     * {@link #valueBlockBytes()}).
     *
     * @return {@code rowBytes() * tokensPerBlock}, at most {@link #MAX_BLOCK_BYTES}
     * @throws KvArgumentException if K and V types differ
     */
    public long blockBytes() {
        requireUniform("blockBytes()");
        return keyBlockBytes();
    }

    /**
     * Bytes of K and V for one token across all layers and KV heads (the dense cost of a token).
     *
     * @return {@code layers * kvHeads * (keyRowBytes() + valueRowBytes())}
     */
    public long bytesPerToken() {
        return (long) layers * kvHeads * (keyRowBytes() + valueRowBytes());
    }

    private void requireUniform(String what) {
        if (keyDtype != valueDtype) {
            throw new KvArgumentException(what + " is defined only when K and V rows have the same type; this layout "
                    + "stores K as " + keyDtype + " and V as " + valueDtype + ": use the key/value accessors");
        }
    }

    private static void checkSide(String side, DType dtype, int headDim) {
        try {
            dtype.checkHeadDim(headDim);
        } catch (KvArgumentException e) {
            throw new KvArgumentException(side + " dtype " + dtype + " cannot store rows of headDim " + headDim + ": "
                    + e.getMessage() + " (allowed for this headDim: " + allowedFor(headDim) + ")");
        }
    }

    private static String allowedFor(int headDim) {
        StringBuilder sb = new StringBuilder();
        for (DType d : DType.values()) {
            try {
                d.checkHeadDim(headDim);
                sb.append(sb.isEmpty() ? "" : ", ").append(d);
            } catch (KvArgumentException e) {
                // not allowed
            }
        }
        return sb.toString();
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
