package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.bench.model.AttentionObserver;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.Sequence;
import io.kvslab.policy.HeadSnapshot;
import io.kvslab.policy.LayerContext;
import io.kvslab.bench.eval.WholeContext;
import io.kvslab.policy.LayerInputs;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The full-cache run of one text on a store of one element type (f32 for the reference run; another type gives the
 * quantisation-alone run and the state its compressed runs select from): teacher-forced logits over every token, the policy inputs right after the context
 * (every row, the last {@code window} context queries of each layer, W_o), and what the per-head perturbation needs
 * (the continuation tokens' queries and every row at the end).
 */
final class FullRun {
    final int[] tokens;
    final int context;
    final float[][] logits;
    final List<LayerContext> atContext;
    final long contextLiveBytes;
    /** [layer][kvHead]: every row after the whole text (context then continuation). */
    final HeadSnapshot[][] rows;
    /** [layer][token t of the continuation][queryHeads * headDim]. */
    final float[][][] continuationQueries;

    private FullRun(int[] tokens, int context, float[][] logits, List<LayerContext> atContext, long contextLiveBytes,
                    HeadSnapshot[][] rows, float[][][] continuationQueries) {
        this.tokens = tokens;
        this.context = context;
        this.logits = logits;
        this.atContext = atContext;
        this.contextLiveBytes = contextLiveBytes;
        this.rows = rows;
        this.continuationQueries = continuationQueries;
    }

    static FullRun run(LlamaModel model, int tokensPerBlock, SequenceAttention attention, int[] tokens, int context,
                       int window, KvDtypes dtype) {
        ModelConfig c = model.config();
        int dim = c.dim();
        int w = Math.min(window, context);
        int cont = tokens.length - context;
        float[][] windowQ = new float[c.layers()][w * dim];
        float[][][] contQ = new float[c.layers()][cont][dim];
        AttentionObserver observer = (layer, positions, n, q, out) -> {
            for (int t = 0; t < n; t++) {
                long p = positions[t];
                if (p >= context - w && p < context) {
                    System.arraycopy(q, t * dim, windowQ[layer], (int) (p - (context - w)) * dim, dim);
                } else if (p >= context) {
                    System.arraycopy(q, t * dim, contQ[layer][(int) (p - context)], 0, dim);
                }
            }
        };
        List<float[]> wo = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            wo.add(model.weights().wo(l));
        }
        long[] windowPositions = new long[w];
        for (int i = 0; i < w; i++) {
            windowPositions[i] = context - w + i;
        }
        List<List<LayerContext>> snapshot = new ArrayList<>(List.of(List.of()));
        long[] live = new long[1];
        try (StoreSession run = new StoreSession(model, tokensPerBlock, attention, dtype)) {
            Sequence seq = run.sequence();
            run.session().observer(observer);
            float[][] logits = TeacherForcing.run(run.session(), tokens, context, session -> {
                List<LayerInputs> inputs = new ArrayList<>();
                for (int l = 0; l < c.layers(); l++) {
                    inputs.add(new LayerInputs(windowQ[l].clone(), windowPositions, wo.get(l)));
                }
                snapshot.set(0, WholeContext.read(seq, inputs));
                live[0] = run.store().stats().liveBytes();
            });
            HeadSnapshot[][] rows = new HeadSnapshot[c.layers()][c.kvHeads()];
            for (int l = 0; l < c.layers(); l++) {
                for (int h = 0; h < c.kvHeads(); h++) {
                    rows[l][h] = HeadSnapshot.read(seq, l, h);
                }
            }
            return new FullRun(tokens, context, logits, snapshot.get(0), live[0], rows, contQ);
        }
    }

    int continuation() {
        return tokens.length - context;
    }

    @Override
    public String toString() {
        return "FullRun[" + context + " context + " + continuation() + " tokens, " + Arrays.toString(
                new int[]{rows.length, rows[0].length}) + "]";
    }
}
