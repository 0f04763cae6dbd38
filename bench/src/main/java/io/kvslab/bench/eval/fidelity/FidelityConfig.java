package io.kvslab.bench.eval.fidelity;

import io.kvslab.Attention;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.policy.Policies;
import io.kvslab.policy.WindowPooling;

import java.util.List;

/**
 * Settings of one fidelity evaluation.
 *
 * @param stories      how many texts of the set to use (the first ones that are long enough)
 * @param continuation tokens teacher-forced after the compressed context (the last ones of each text)
 * @param minContext   texts whose context would be shorter than this are skipped
 * @param maxContext   texts are cut to at most this many context tokens (their beginning is kept)
 * @param window       observation window of the SnapKV-family policies for these short contexts
 * @param fractions    fixed budgets: fractions of each (layer, KV head)'s context rows to keep
 * @param dynamic      also run the "dynamic" column: DBudgetKV with its own budget, the other policies at the fraction
 *                     DBudgetKV kept on the same text
 * @param policies     policy names ({@link Policies#NAMES})
 * @param tokensPerBlock rows per store block: the granularity of the KV memory the runs hold
 * @param attention    attention over the store's rows: "java" (plain Java over the rows read back) or "native" (the
 *                     library's kernel)
 * @param pooling      pooling of the SnapKV-family window scores (the authors' max)
 * @param kernel       pooling kernel size (the authors' 7; 1 = none)
 * @param kvDtypes     K/V element types of the compressed runs' stores (the reference run is always f32): a pair
 *                     other than f32 adds a row for the quantisation alone and runs every policy and budget on it too
 * @param queryPrecision decode attention's low-precision mode to evaluate ({@link Attention.QueryPrecision}): other
 *                     than EXACT, every quantised type also gets a whole-cache run in that mode, compared with the f32
 *                     reference and with the exact run on the same type (native attention only)
 */
public record FidelityConfig(int stories, int continuation, int minContext, int maxContext, int window,
                             List<Double> fractions, boolean dynamic, List<String> policies, int tokensPerBlock,
                             String attention, WindowPooling pooling, int kernel, List<KvDtypes> kvDtypes,
                             Attention.QueryPrecision queryPrecision) {
    /** Default: 16 stories, 64 continuation tokens, window 16, budgets 10/25/50% and dynamic, every policy. */
    public static final int DEFAULT_STORIES = 16;
    public static final int DEFAULT_CONTINUATION = 64;
    public static final int DEFAULT_MIN_CONTEXT = 64;
    public static final int DEFAULT_WINDOW = 16;
    public static final List<Double> DEFAULT_FRACTIONS = List.of(0.10, 0.25, 0.50);
    public static final int DEFAULT_TOKENS_PER_BLOCK = 8;

    public FidelityConfig {
        if (stories < 1 || continuation < 2 || minContext < 1 || maxContext < minContext || window < 1) {
            throw new IllegalArgumentException("stories >= 1, continuation >= 2, 1 <= minContext <= maxContext and "
                    + "window >= 1 are required; got " + stories + ", " + continuation + ", " + minContext + ", "
                    + maxContext + ", " + window);
        }
        fractions = List.copyOf(fractions);
        for (double f : fractions) {
            if (!(f > 0 && f <= 1)) {
                throw new IllegalArgumentException("budget fractions must be in (0, 1], got " + f);
            }
        }
        if (fractions.isEmpty() && !dynamic) {
            throw new IllegalArgumentException("at least one budget (a fraction or dynamic) is required");
        }
        policies = List.copyOf(policies);
        if (policies.isEmpty()) {
            throw new IllegalArgumentException("at least one policy is required");
        }
        for (String p : policies) {
            Policies.byName(p); // throws naming the known policies
        }
        if (tokensPerBlock < 1) {
            throw new IllegalArgumentException("tokensPerBlock must be >= 1, got " + tokensPerBlock);
        }
        if (pooling == null || kernel < 1 || kernel % 2 == 0) {
            throw new IllegalArgumentException("a pooling kind and an odd kernel >= 1 are required, got " + pooling
                    + " and " + kernel);
        }
        if (!List.of("java", "native").contains(attention)) {
            throw new IllegalArgumentException("attention must be java or native, got " + attention);
        }
        if (queryPrecision == null) {
            throw new IllegalArgumentException("a query precision is required (EXACT for the exact path)");
        }
        if (queryPrecision != Attention.QueryPrecision.EXACT && !attention.equals("native")) {
            throw new IllegalArgumentException("query precision " + queryPrecision + " needs the native attention");
        }
        kvDtypes = List.copyOf(kvDtypes);
        if (kvDtypes.isEmpty() || kvDtypes.stream().distinct().count() != kvDtypes.size()) {
            throw new IllegalArgumentException("at least one KV element type, each once, is required; got "
                    + kvDtypes);
        }
    }

    /** The settings with the exact attention path. */
    public FidelityConfig(int stories, int continuation, int minContext, int maxContext, int window,
                          List<Double> fractions, boolean dynamic, List<String> policies, int tokensPerBlock,
                          String attention, WindowPooling pooling, int kernel, List<KvDtypes> kvDtypes) {
        this(stories, continuation, minContext, maxContext, window, fractions, dynamic, policies, tokensPerBlock,
                attention, pooling, kernel, kvDtypes, Attention.QueryPrecision.EXACT);
    }

    /** The settings with f32 stores only. */
    public FidelityConfig(int stories, int continuation, int minContext, int maxContext, int window,
                          List<Double> fractions, boolean dynamic, List<String> policies, int tokensPerBlock,
                          String attention, WindowPooling pooling, int kernel) {
        this(stories, continuation, minContext, maxContext, window, fractions, dynamic, policies, tokensPerBlock,
                attention, pooling, kernel, List.of(KvDtypes.F32));
    }

    /** The default configuration. */
    public static FidelityConfig defaults() {
        return new FidelityConfig(DEFAULT_STORIES, DEFAULT_CONTINUATION, DEFAULT_MIN_CONTEXT, Integer.MAX_VALUE,
                DEFAULT_WINDOW,
                DEFAULT_FRACTIONS, true, Policies.NAMES, DEFAULT_TOKENS_PER_BLOCK, "native",
                WindowPooling.MAX, 7);
    }
}
