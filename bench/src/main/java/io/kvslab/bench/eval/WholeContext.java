package io.kvslab.bench.eval;

import io.kvslab.Sequence;
import io.kvslab.policy.LayerContext;
import io.kvslab.policy.LayerInputs;

import java.util.ArrayList;
import java.util.List;

/**
 * Every layer of a sequence read into memory at once (one {@link LayerContext} per layer), for evaluations that run several
 * policies on the same rows (small models only: this holds all layers on the heap; compressing a long context goes
 * through the library's layer-at-a-time {@code Compressor} instead).
 */
public final class WholeContext {
    private WholeContext() {
    }

    /**
     * @param inputs per layer, the window queries and W_o (null, or null entries, when none)
     */
    public static List<LayerContext> read(Sequence sequence, List<LayerInputs> inputs) {
        int layers = sequence.layout().layers();
        List<LayerContext> out = new ArrayList<>(layers);
        for (int l = 0; l < layers; l++) {
            out.add(LayerContext.read(sequence, l, inputs == null ? null : inputs.get(l)));
        }
        return out;
    }
}
