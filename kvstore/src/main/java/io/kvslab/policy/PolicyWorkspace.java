package io.kvslab.policy;

import io.kvslab.internal.ffm.PolicyKernels;

/**
 * Native scratch and kernels (window attention, value norms) that policies use for their heavy products. Opaque to
 * callers: a {@link Compressor} owns one, and {@link CompressionPolicy#select} takes one; custom {@link Scorer}s and
 * {@link Selector}s receive it to hand on to the built-in steps they compose. Confined to the creating thread; close
 * it when done (it holds native memory).
 */
public final class PolicyWorkspace implements AutoCloseable {
    private final PolicyKernels kernels;

    private PolicyWorkspace(PolicyKernels kernels) {
        this.kernels = kernels;
    }

    /**
     * A new workspace (loads the native library on first use).
     *
     * @return a new workspace for the calling thread; close it when done
     */
    public static PolicyWorkspace create() {
        return new PolicyWorkspace(PolicyKernels.create());
    }

    /** The kernels, for this package's steps only. */
    PolicyKernels kernels() {
        return kernels;
    }

    @Override
    public void close() {
        kernels.close();
    }
}
