package io.kvslab.policy;

/**
 * Pooling of SnapKV-style window-attention scores over neighbouring rows ({@link Policies#windowAttention}).
 * {@link #AVG} pads with zeros and always divides by the kernel size (PyTorch {@code avg_pool1d},
 * count_include_pad); {@link #MAX} ignores out-of-range neighbours ({@code max_pool1d} pads with -inf).
 */
public enum WindowPooling { AVG, MAX }
