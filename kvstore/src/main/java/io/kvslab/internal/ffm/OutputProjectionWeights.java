package io.kvslab.internal.ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A layer's attention output projection W_o copied off-heap once, so that the value-norm kernel can run over every
 * KV head of the layer without copying the (large) matrix again.
 *
 * <p>Layout as llama2.c's {@code wo}: {@code [modelDim][queryHeads * headDim]} row-major, {@code out = W_o x}; query
 * head {@code h} owns columns {@code h*headDim .. (h+1)*headDim - 1}. Create with
 * {@link PolicyKernels#uploadOutputProjection}; close when the layer is done. Not thread-safe.
 */
public final class OutputProjectionWeights implements AutoCloseable {
    private final Arena arena;
    private final MemorySegment segment;
    private final int modelDim;
    private final int queryHeads;
    private final int headDim;
    private boolean closed;

    OutputProjectionWeights(float[] weights, int modelDim, int queryHeads, int headDim) {
        this.modelDim = modelDim;
        this.queryHeads = queryHeads;
        this.headDim = headDim;
        this.arena = Arena.ofConfined();
        this.segment = arena.allocate((long) weights.length * Float.BYTES, 64);
        MemorySegment.copy(weights, 0, segment, ValueLayout.JAVA_FLOAT, 0, weights.length);
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
