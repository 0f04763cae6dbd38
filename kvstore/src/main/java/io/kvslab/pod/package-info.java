/**
 * PoD (Proximal tokens over Distant tokens, arXiv 2412.02252): distant tokens share one key per head-wise group of
 * layers. {@link io.kvslab.pod.LayerGrouping} is the offline per-KV-head grouping (calibrated by
 * {@link io.kvslab.pod.LayerSimilarity}, saved next to the model with a {@link io.kvslab.pod.ModelFingerprint});
 * {@link io.kvslab.pod.PodSharing} demotes distant key blocks to aliases of the base layer's blocks as decoding
 * moves on (real bytes freed) and builds the v1 queries; attention runs in {@link io.kvslab.Attention} (v2)
 * or the package-private {@code PodAttention} (v1, or v2 in two parts, merged by {@code LseMerge}), which
 * {@link io.kvslab.pod.PodDecoder} runs.
 * {@link io.kvslab.pod.PodDecoder} is the whole decode step of one token and layer (append, demote, attend).
 */
package io.kvslab.pod;
