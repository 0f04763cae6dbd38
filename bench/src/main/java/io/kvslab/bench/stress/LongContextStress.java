package io.kvslab.bench.stress;

import io.kvslab.bench.model.SequenceAttention;

import java.io.PrintStream;

/**
 * Streams a long context through one sequence with decoding-time compression to a fixed budget.
 *
 * <p>Tokens arrive in chunks of {@code chunk} (1 = token-by-token decoding) and go through every layer. When the
 * sequence has taken {@code budget + interval} tokens since the start, and then every {@code interval} tokens, it is
 * compressed to a budget of {@code budget} rows per (layer, KV head) by a policy of {@code io.kvslab.policy}
 * (default StreamingLLM; window policies get the synthetic queries of the last tokens, CriticalKV a synthetic W_o),
 * applied one layer at a time (the library's {@link io.kvslab.policy.Compressor}). Every {@code attentionEvery} tokens a decode step
 * runs attention over every layer.
 *
 * <p><b>Memory bound.</b> With a uniform policy (same budget in every head and layer) a head never holds more than
 * {@code maxRows = budget + interval + chunk - 1} rows, so live bytes stay under
 * {@code 2 x layers x kvHeads x ceil(maxRows / tokensPerBlock) x blockBytes}. Head-wise and pyramid policies move
 * budget between heads and layers but keep the total, so the rows of all heads stay under
 * {@code layers x kvHeads x maxRows} and the blocks under that over tokensPerBlock plus one partial block per head.
 * The allocator only takes a new slab when every slab is full, so reserved bytes stay under the block bound
 * rounded up to whole slabs. The store's hard limit is set to exactly that bound: crossing it fails the run.
 * Dynamic-budget policies (DBudgetKV) have no such bound and are refused.
 *
 * <p><b>Invariants checked</b> (each failure is a violation; the command exits non-zero):
 * after every compression, for sinks + recent policies (StreamingLLM, {@code window}) every head's positions are
 * exactly the sinks plus the newest rows; for the others every head keeps a strictly increasing subsequence of its
 * rows, every observation-window row it must protect, exactly the budget when budgets are uniform, and
 * exactly the pooled total budget over a layer's heads (Ada-KV) or a head's layers (PyramidKV); the store's live
 * bytes equal the block count the lengths imply; a sampled head's stored K and V rows equal the regenerated synthetic
 * rows (after dtype rounding) bit for bit; every {@code checkEvery}-th attention step one layer's output is compared
 * against {@link io.kvslab.bench.model.ReferenceAttention}; at the end, closing the sequence frees every block and
 * closing the store reports no leak.
 *
 * <p>The pieces: {@link LongContextConfig} (what to stream and the bounds), {@link LongContextRun} (the streaming
 * loop), {@link CompressionChecks} (the invariants after each compression), {@link LongContextResult} (the report).
 */
public final class LongContextStress {
    /** Absolute tolerance of the attention check: fp32 kernels vs a double reference on O(1) values. */
    static final double ATTENTION_TOLERANCE = 2e-4;

    private final LongContextConfig config;
    private final SequenceAttention attention;
    private final PrintStream progressOut;

    /** @param progressOut where the progress bar goes (stderr), or null for none */
    public LongContextStress(LongContextConfig config, SequenceAttention attention, PrintStream progressOut) {
        this.config = config;
        this.attention = attention;
        this.progressOut = progressOut;
    }

    public LongContextResult run() {
        return new LongContextRun(config, attention, progressOut).run();
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (!(d <= m)) {
                m = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d;
            }
        }
        return m;
    }
}
