package io.kvslab.bench.stress;

import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.HeadSnapshot;
import io.kvslab.policy.LayerContext;
import io.kvslab.policy.OutputProjection;
import io.kvslab.policy.Selection;
import io.kvslab.policy.SequenceContext;
import io.kvslab.policy.WindowQueries;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * Runs a policy of {@code io.kvslab.policy} on a sequence one layer at a time.
 *
 * <p>Why: {@link SequenceContext#read} copies every row of every layer into fp32 heap arrays; for a Llama-3-8B cache
 * of 24k tokens that is 6.4 GB of heap per compression, more than a default JVM has. Every method of the package
 * decides each layer on its own (uniform, pyramid and dynamic layer rules look at one layer and the layer count;
 * Ada-KV redistributes within a layer), so the result is the same as {@link Compressor#compress} on the whole
 * sequence ({@code LayerwiseCompressorTest} checks this for every named policy) while the heap holds one layer.
 *
 * <p>How: for layer {@code l} the context holds that layer's rows and, for every other layer, heads with no rows
 * (the policy keeps them whole, as it does for any head with nothing to evict); only layer {@code l}'s selection is
 * applied. Thread-confined (it owns a {@link Compressor}); close it when done.
 */
public final class LayerwiseCompressor implements AutoCloseable {
    private final CompressionPolicy policy;
    private final Compressor compressor = new Compressor();

    public LayerwiseCompressor(CompressionPolicy policy) {
        this.policy = policy;
    }

    public CompressionPolicy policy() {
        return policy;
    }

    /**
     * Compresses every layer of {@code s} to {@code budget}.
     *
     * @param windows           the observation window of a layer (called only if the policy needs one)
     * @param outputProjections W_o of a layer (called only if the policy needs it)
     * @return rows kept over all layers and heads
     */
    public long compress(Sequence s, Budget budget, IntFunction<WindowQueries> windows,
                         IntFunction<OutputProjection> outputProjections) {
        KvLayout layout = s.layout();
        int dim = layout.headDim();
        List<HeadSnapshot> empty = new ArrayList<>();
        for (int h = 0; h < layout.kvHeads(); h++) {
            empty.add(new HeadSnapshot(new float[0], new float[0], new long[0], dim));
        }
        long kept = 0;
        for (int l = 0; l < layout.layers(); l++) {
            WindowQueries window = policy.windowQueries() > 0 ? windows.apply(l) : null;
            OutputProjection wo = policy.needsOutputProjection() ? outputProjections.apply(l) : null;
            List<LayerContext> layers = new ArrayList<>(layout.layers());
            for (int other = 0; other < layout.layers(); other++) {
                if (other == l) {
                    List<HeadSnapshot> heads = new ArrayList<>(layout.kvHeads());
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        heads.add(HeadSnapshot.read(s, l, h));
                    }
                    layers.add(new LayerContext(l, layout.queryHeads(), dim, heads, window, wo));
                } else {
                    // The same window object: an empty layer is kept whole before its queries are ever read.
                    layers.add(new LayerContext(other, layout.queryHeads(), dim, empty, window, null));
                }
            }
            Selection sel = policy.select(new SequenceContext(layers), budget, compressor.kernels());
            for (int h = 0; h < layout.kvHeads(); h++) {
                if (!sel.keepsAll(l, h)) {
                    s.keep(l, h, sel.kept(l, h));
                }
                kept += s.length(l, h);
            }
        }
        return kept;
    }

    @Override
    public void close() {
        compressor.close();
    }
}
