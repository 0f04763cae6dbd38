package io.kvslab;

import java.lang.foreign.MemorySegment;

/**
 * A scoped, read-only view of one layer's block memory, for an engine that runs its own attention over KVSlab's
 * blocks. Open it with {@link Sequence#readLayer(int)} in try-with-resources: while it is open the sequence's read
 * lock is held (closes, evictions and compaction of that sequence wait), and every segment it hands out is
 * read-only and belongs to the view's own scope, so using one after {@link #close()} throws
 * {@link IllegalStateException} instead of reading freed or reused memory. Confined to the opening thread.
 *
 * <p>Block {@code b} of a (layer, KV head) holds rows {@code b * tokensPerBlock ..}; the last block may be partly
 * filled. A K row is {@link KvLayout#keyRowBytes()} bytes and a V row {@link KvLayout#valueRowBytes()} (they differ
 * when K and V types differ), rows back to back: {@code headDim} little-endian elements of the side's
 * {@link DType} for F32/F16/BF16, ggml groups (f16 scale + codes) for Q8_0/Q4_0 (docs/dtypes.md).
 * {@link #readKeys} / {@link #readValues} give rows as fp32 whatever the dtype (dequantised).
 */
public interface LayerView extends AutoCloseable {
    /**
     * The layer this view reads.
     *
     * @return the layer index given to {@link Sequence#readLayer}
     */
    int layer();

    /**
     * The store's layout (element type, head size, rows per block).
     *
     * @return the layout of the sequence's store
     */
    KvLayout layout();

    /**
     * Rows stored for {@code kvHead}.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @return the number of rows, {@code >= 0}
     */
    int length(int kvHead);

    /**
     * Absolute positions of {@code kvHead}'s rows (a copy).
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @return a new array of {@code length(kvHead)} ascending positions
     */
    long[] positions(int kvHead);

    /**
     * Blocks in {@code kvHead}'s table.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @return the number of blocks; the last one may be partly filled
     */
    int blockCount(int kvHead);

    /**
     * Read-only K block {@code block} of {@code kvHead}, valid until this view closes.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @param block block index, in {@code [0, blockCount(kvHead))}
     * @return a read-only segment of {@code layout().blockBytes()} bytes: {@code tokensPerBlock} rows in the layout's
     *         dtype
     */
    MemorySegment keyBlock(int kvHead, int block);

    /**
     * Read-only V block {@code block} of {@code kvHead}, valid until this view closes.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @param block block index, in {@code [0, blockCount(kvHead))}
     * @return a read-only segment of {@code layout().blockBytes()} bytes: {@code tokensPerBlock} rows in the layout's
     *         dtype
     */
    MemorySegment valueBlock(int kvHead, int block);

    /**
     * K rows {@code [from, from + count)} of {@code kvHead} as fp32 (widened or dequantised) into
     * {@code dst[offset ..]}, {@code headDim} floats per row.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @param from first row, {@code >= 0}
     * @param count rows to read, {@code >= 0}, with {@code from + count <= length(kvHead)}
     * @param dst destination, at least {@code offset + count * headDim} long
     * @param offset index in {@code dst} of the first float written
     */
    void readKeys(int kvHead, int from, int count, float[] dst, int offset);

    /**
     * V rows {@code [from, from + count)} of {@code kvHead} as fp32, like {@link #readKeys}.
     *
     * @param kvHead KV head, in {@code [0, layout().kvHeads())}
     * @param from first row, {@code >= 0}
     * @param count rows to read, {@code >= 0}, with {@code from + count <= length(kvHead)}
     * @param dst destination, at least {@code offset + count * headDim} long
     * @param offset index in {@code dst} of the first float written
     */
    void readValues(int kvHead, int from, int count, float[] dst, int offset);

    /** Releases the read lock and invalidates every segment handed out. Idempotent. */
    @Override
    void close();
}
