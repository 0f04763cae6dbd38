package io.kvslab.bench.footprint;

import io.kvslab.KvArgumentException;
import io.kvslab.bench.stress.StructuredKv;
import io.kvslab.bench.stress.SyntheticPolicyInputs;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Policies;

import java.util.Locale;

/**
 * The "policies" dimension of the footprint benchmark: how a filled sequence is compressed, and how many rows per
 * (layer, KV head) that keeps, so that rows too large to allocate can be computed analytically.
 */
public interface FootprintPolicy {
    /** Short name for tables and plots. */
    String name();

    /** Rows kept by one (layer, KV head) out of a context of {@code contextTokens} rows. */
    int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens);

    /**
     * What {@link #keptRows} is for rows that are not measured: {@code analytic} when it is exactly what the policy
     * keeps, {@code estimate} when the policy moves budget between heads or layers (the total is right, the per-head
     * split and so the block slack are approximated), {@code dense bound} when the policy picks its own budget.
     */
    default String analyticKind() {
        return "analytic";
    }

    /** Compresses a filled sequence in place (really freeing rows); {@code gen} produced its rows. */
    void compress(Sequence s, StructuredKv gen);

    /** No compression: the dense cache. */
    static FootprintPolicy full() {
        return new Full();
    }

    /** A policy of {@code io.kvslab.policy} keeping {@code keptFraction} of each head (ignored by DBudgetKV). */
    static FootprintPolicy library(CompressionPolicy policy, double keptFraction) {
        return new Library(policy, keptFraction);
    }

    /**
     * {@code full}, or a name of
     * {@link Policies#NAMES} (kept fraction from the arguments; StreamingLLM with the given sinks).
     */
    static FootprintPolicy parse(String name, double keptFraction, int sinks) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        switch (n) {
            case "full", "none" -> {
                return full();
            }
            default -> {
                CompressionPolicy p;
                try {
                    p = Policies.byName(n);
                } catch (KvArgumentException e) {
                    throw new IllegalArgumentException("unknown policy '" + name + "': use full or one of "
                            + Policies.NAMES);
                }
                return library(p.name().equals("streamingllm") ? Policies.streamingLlm(sinks) : p, keptFraction);
            }
        }
    }

    /** Keeps everything. */
    record Full() implements FootprintPolicy {
        @Override
        public String name() {
            return "full";
        }

        @Override
        public int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens) {
            return contextTokens;
        }

        @Override
        public void compress(Sequence s, StructuredKv gen) {
            // nothing to evict
        }
    }

    /**
     * A policy of the policy package, run on the filled sequence one layer at a time ({@link Compressor}, the library's layer-at-a-time path)
     * with the synthetic queries of the last tokens as its observation window and a synthetic W_o.
     */
    record Library(CompressionPolicy policy, double keptFraction) implements FootprintPolicy {
        public Library {
            if (!(keptFraction > 0 && keptFraction <= 1)) {
                throw new IllegalArgumentException("kept fraction must be in (0, 1], got " + keptFraction);
            }
        }

        @Override
        public String name() {
            return policy.dynamicBudget() ? policy.name()
                    : String.format(Locale.ROOT, "%s%.0f%%", policy.name(), keptFraction * 100);
        }

        private Budget budget() {
            return policy.dynamicBudget() ? Budget.dynamic() : Budget.fraction(keptFraction);
        }

        /** The uniform per-head budget, raised to the protected rows (sinks or the observation window). */
        @Override
        public int keptRows(KvLayout layout, int layer, int kvHead, int contextTokens) {
            if (policy.dynamicBudget() || policy.fullLayers().contains(layer)) {
                return contextTokens;
            }
            int prot = policy.protection().observationWindow() ? policy.windowQueries() : 0;
            prot += policy.protection().sinks() + policy.protection().recent();
            return Math.min(contextTokens, Math.max(budget().rowsFor(contextTokens), prot));
        }

        @Override
        public String analyticKind() {
            if (policy.dynamicBudget()) {
                return "dense bound";
            }
            boolean uniform = policy.uniformLayers() && policy.uniformHeads();
            return uniform ? "analytic" : "estimate";
        }

        @Override
        public void compress(Sequence s, StructuredKv gen) {
            int n = s.length(0, 0);
            SyntheticPolicyInputs inputs = new SyntheticPolicyInputs(s.layout(), gen, 0, 1);
            int w = Math.max(1, policy.windowQueries());
            try (Compressor c = new Compressor()) {
                c.compress(s, policy, budget(), l -> inputs.forPolicy(policy, l, n, w));
            }
        }
    }
}
