package io.kvslab.policy;

/**
 * Pooling of SnapKV-style window-attention scores over neighbouring rows ({@link Policies#windowAttention}).
 * {@link #AVG} pads with zeros and always divides by the kernel size (PyTorch {@code avg_pool1d},
 * count_include_pad); {@link #MAX} ignores out-of-range neighbours ({@code max_pool1d} pads with -inf).
 */
public enum WindowPooling {
    /** Mean over the kernel window, zero-padded at the ends (kvpress's SnapKVPress). */
    AVG,
    /** Maximum over the kernel window, ignoring positions outside the row range (the SnapKV authors' code). */
    MAX
}
