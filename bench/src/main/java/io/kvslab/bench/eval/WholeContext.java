package io.kvslab.bench.eval;

import io.kvslab.Sequence;
import io.kvslab.policy.LayerContext;
import io.kvslab.policy.OutputProjection;
import io.kvslab.policy.SequenceContext;
import io.kvslab.policy.WindowQueries;

import java.util.ArrayList;
import java.util.List;

/**
 * Every layer of a sequence read into one in-memory {@link SequenceContext}, for evaluations that run several
 * policies on the same rows (small models only: this holds all layers on the heap; compressing a long context goes
 * through the library's layer-at-a-time {@code Compressor} instead).
 */
public final class WholeContext {
    private WholeContext() {
    }

    /**
     * @param windows           per layer, the window queries (null, or null entries, when none)
     * @param outputProjections per layer, W_o (null, or null entries, when none)
     */
    public static SequenceContext read(Sequence sequence, List<WindowQueries> windows,
                                       List<OutputProjection> outputProjections) {
        int layers = sequence.layout().layers();
        List<LayerContext> out = new ArrayList<>(layers);
        for (int l = 0; l < layers; l++) {
            out.add(LayerContext.read(sequence, l, windows == null ? null : windows.get(l),
                    outputProjections == null ? null : outputProjections.get(l)));
        }
        return new SequenceContext(out);
    }
}
