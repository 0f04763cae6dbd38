package io.kvslab;

import java.lang.foreign.MemorySegment;

/**
 * A caller's K or V tensor for a batch of tokens, viewed in place: {@code [tokens, heads, headDim]} elements of
 * {@code type} in {@code data} (heap or native), with an explicit stride per dimension, in elements. The
 * Hugging Face / vLLM layout {@code [tokens, kvHeads, headDim]} with heads interleaved is
 * {@link #of(MemorySegment, DType, int, int, int)}; a head-major layout {@code [kvHeads, tokens, headDim]} is the
 * same data with other strides.
 *
 * <p>The store reads the tensor during the call that receives it and keeps no reference to it. When
 * {@code type} equals the store's dtype and rows are contiguous ({@code dimStride == 1}), rows are copied as bytes
 * without conversion.
 *
 * @param data        the elements; its size must cover the largest element the shape and strides address
 * @param type        element type of {@code data}: F32, F16 or BF16 (little-endian)
 * @param tokens      tokens in the batch, {@code >= 1}
 * @param heads       KV heads, {@code >= 1}
 * @param headDim     elements per head vector, {@code >= 1}
 * @param tokenStride elements between token {@code t} and {@code t + 1}, {@code >= 0}
 * @param headStride  elements between head {@code h} and {@code h + 1}, {@code >= 0}
 * @param dimStride   elements between two values of one head vector, {@code >= 1}
 */
public record KvTensor(MemorySegment data, DType type, int tokens, int heads, int headDim,
                       long tokenStride, long headStride, long dimStride) {

    /**
     * Checks the shape, strides and that every element the strides reach lies inside {@code data}.
     *
     * @throws KvArgumentException if a value is null or out of range, the type is quantised, or the tensor does not fit
     *         in {@code data}
     */
    public KvTensor {
        if (data == null || type == null) {
            throw new KvArgumentException("tensor data and type must not be null");
        }
        if (type.isQuantized()) {
            throw new KvArgumentException("tensor type must be F32, F16 or BF16 (a caller's tensor holds plain values; "
                    + "the store quantises them), got " + type);
        }
        if (tokens < 1 || heads < 1 || headDim < 1) {
            throw new KvArgumentException("tensor shape must be positive, got [tokens " + tokens + ", heads " + heads
                    + ", headDim " + headDim + "]");
        }
        if (tokenStride < 0 || headStride < 0 || dimStride < 1) {
            throw new KvArgumentException("tensor strides must be tokenStride >= 0, headStride >= 0, dimStride >= 1"
                    + " elements, got " + tokenStride + ", " + headStride + ", " + dimStride);
        }
        long last;
        try {
            last = Math.addExact(Math.addExact(Math.multiplyExact(tokens - 1L, tokenStride),
                    Math.multiplyExact(heads - 1L, headStride)), Math.multiplyExact(headDim - 1L, dimStride));
            long needBytes = Math.multiplyExact(last + 1, (long) type.bytes());
            if (needBytes > data.byteSize()) {
                throw new KvArgumentException("tensor [" + tokens + ", " + heads + ", " + headDim + "] of " + type
                        + " with strides (" + tokenStride + ", " + headStride + ", " + dimStride + ") addresses "
                        + needBytes + " bytes, but the segment holds " + data.byteSize());
            }
        } catch (ArithmeticException e) {
            throw new KvArgumentException("tensor shape and strides overflow a 64-bit byte offset: [" + tokens + ", "
                    + heads + ", " + headDim + "] strides (" + tokenStride + ", " + headStride + ", " + dimStride + ")");
        }
    }

    /**
     * A contiguous {@code [tokens, heads, headDim]} tensor (heads interleaved per token, the Hugging Face layout).
     *
     * @param data the elements, heap or native
     * @param type element type: {@code F32}, {@code F16} or {@code BF16}
     * @param tokens tokens, {@code >= 1}
     * @param heads heads per token, {@code >= 1}
     * @param headDim elements per head vector, {@code >= 1}
     * @return the tensor (no copy of {@code data})
     */
    public static KvTensor of(MemorySegment data, DType type, int tokens, int heads, int headDim) {
        return new KvTensor(data, type, tokens, heads, headDim, (long) heads * headDim, headDim, 1);
    }

    /**
     * A contiguous f32 {@code [tokens, heads, headDim]} tensor over a heap array (no copy).
     *
     * @param data f32 elements, at least {@code tokens * heads * headDim} long
     * @param tokens tokens, {@code >= 1}
     * @param heads heads per token, {@code >= 1}
     * @param headDim elements per head vector, {@code >= 1}
     * @return the tensor, a view of {@code data}
     */
    public static KvTensor of(float[] data, int tokens, int heads, int headDim) {
        if (data == null) {
            throw new KvArgumentException("tensor data must not be null");
        }
        return of(MemorySegment.ofArray(data), DType.F32, tokens, heads, headDim);
    }

    /**
     * Element offset of value {@code d} of head {@code h} of token {@code t}.
     *
     * @param t token, in {@code [0, tokens)}
     * @param h head, in {@code [0, heads)}
     * @param d element of the head vector, in {@code [0, headDim)}
     * @return the offset in elements (not bytes) from the start of {@code data}
     */
    public long elementOffset(int t, int h, int d) {
        return t * tokenStride + h * headStride + d * dimStride;
    }

    /**
     * Whether each head vector is contiguous ({@code dimStride == 1}).
     *
     * @return {@code true} if {@code dimStride == 1}
     */
    public boolean rowsContiguous() {
        return dimStride == 1;
    }
}
