package io.kvslab.policy;

import io.kvslab.internal.ffm.OutputProjectionGram;
import io.kvslab.internal.ffm.PolicyKernels;

import java.util.Map;
import java.util.WeakHashMap;

/**
 * Native scratch and kernels (window attention, value norms) that policies use for their heavy products. A
 * {@link Compressor} owns one (callers reach it only through the compressor: {@link CompressionPolicy#select} takes
 * the compressor), which lets one call at a time use it; close it when done (it holds native memory).
 *
 * <p>It also keeps the W_o Gram matrices of {@link ValueNorm#L2} (about {@code queryHeads x headDim^2} floats per
 * layer: 2 MiB at Llama-3-8B's geometry) for as long as the caller keeps that layer's weights array: they are keyed
 * by the array's identity (a {@link WeakHashMap}: float arrays compare by identity), computed on first use.
 */
final class PolicyWorkspace implements AutoCloseable {
    private final PolicyKernels kernels;
    private final Map<float[], OutputProjectionGram> grams = new WeakHashMap<>();

    private PolicyWorkspace(PolicyKernels kernels) {
        this.kernels = kernels;
    }

    /**
     * A new workspace (loads the native library on first use).
     *
     * @return a new workspace; close it when done
     */
    static PolicyWorkspace create() {
        return new PolicyWorkspace(PolicyKernels.create());
    }

    /** The kernels, for this package's steps only. */
    PolicyKernels kernels() {
        return kernels;
    }

    /**
     * W_o's per-head Gram matrices, computed once per weights array (and shape) and then reused.
     */
    OutputProjectionGram gram(OutputProjection wo, int queryHeads, int headDim) {
        OutputProjectionGram g = grams.get(wo.weights());
        if (g == null || g.modelDim() != wo.modelDim() || g.queryHeads() != queryHeads || g.headDim() != headDim) {
            g = kernels.gram(wo.weights(), wo.modelDim(), queryHeads, headDim);
            grams.put(wo.weights(), g);
        }
        return g;
    }

    @Override
    public void close() {
        grams.clear();
        kernels.close();
    }
}
