package io.kvslab.internal.ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A layer's attention output projection W_o copied off-heap once, so that the value-norm kernel can run over every
 * KV head of the layer without copying the (large) matrix again.
 *
 * <p>The caller's array is llama2.c's {@code wo}: {@code [modelDim][queryHeads * headDim]} row-major, {@code out =
 * W_o x}; query head {@code h} owns columns {@code h*headDim .. (h+1)*headDim - 1}. The off-heap copy is head-major,
 * {@code [queryHeads][modelDim][headDim]}: each head's slice contiguous. The kernels' sgemm packs a head's slice once
 * per 256-row tile; read row-major, that is 4,096 rows of 512 bytes 16 KiB apart (Llama-3-8B), which ran the tile
 * product at about 0.55 of its speed on a contiguous slice, with the same packed data and so the same bits (see
 * docs/benchmarks.md, {@code pol6}). Create with {@link PolicyKernels#uploadOutputProjection}; close when the layer
 * is done. Not thread-safe.
 */
public final class OutputProjectionWeights implements AutoCloseable {
    private final Arena arena;
    private final MemorySegment segment;
    private final int modelDim;
    private final int queryHeads;
    private final int headDim;
    private final boolean headMajor;
    private boolean closed;

    OutputProjectionWeights(float[] weights, int modelDim, int queryHeads, int headDim) {
        this(weights, modelDim, queryHeads, headDim, true);
    }

    /**
     * @param headMajor false keeps the caller's row-major layout off-heap (the layout before {@code pol6}, for the
     *                  test that both give the same bits)
     */
    OutputProjectionWeights(float[] weights, int modelDim, int queryHeads, int headDim, boolean headMajor) {
        this.modelDim = modelDim;
        this.queryHeads = queryHeads;
        this.headDim = headDim;
        this.headMajor = headMajor;
        this.arena = Arena.ofConfined();
        this.segment = arena.allocate((long) weights.length * Float.BYTES, 64);
        if (!headMajor) {
            MemorySegment.copy(weights, 0, segment, ValueLayout.JAVA_FLOAT, 0, weights.length);
            return;
        }
        // row by row (each read once, contiguously), each head's part to its slice
        int width = queryHeads * headDim;
        long slice = (long) modelDim * headDim * Float.BYTES;
        for (int k = 0; k < modelDim; k++) {
            for (int h = 0; h < queryHeads; h++) {
                MemorySegment.copy(weights, k * width + h * headDim, segment, ValueLayout.JAVA_FLOAT,
                        h * slice + (long) k * headDim * Float.BYTES, headDim);
            }
        }
    }

    /** The weights as the caller gave them, {@code [modelDim][queryHeads * headDim]} (for the plain-Java kernel). */
    float[] rowMajor() {
        float[] w = new float[Math.multiplyExact(modelDim, queryHeads * headDim)];
        for (int h = 0; h < queryHeads; h++) {
            for (int k = 0; k < modelDim; k++) {
                MemorySegment.copy(segment(), ValueLayout.JAVA_FLOAT,
                        (h * headStride() + k * rowStride()) * Float.BYTES, w, k * queryHeads * headDim + h * headDim,
                        headDim);
            }
        }
        return w;
    }

    /** Floats between row k and row k + 1 of one head's slice in {@link #segment()}. */
    long rowStride() {
        return headMajor ? headDim : (long) queryHeads * headDim;
    }

    /** Floats between the starts of head h's and head h + 1's slices in {@link #segment()}. */
    long headStride() {
        return headMajor ? (long) modelDim * headDim : headDim;
    }

    /** Rows of W_o: the model's hidden size. */
    public int modelDim() {
        return modelDim;
    }

    /** Query heads whose outputs W_o concatenates. */
    public int queryHeads() {
        return queryHeads;
    }

    /** Elements per head. */
    public int headDim() {
        return headDim;
    }

    MemorySegment segment() {
        if (closed) {
            throw new PolicyKernelException("these output-projection weights were closed; upload them again");
        }
        return segment;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
