package io.kvslab.policy;

import io.kvslab.Sequence;
import io.kvslab.internal.ffm.PolicyKernels;

import java.util.ArrayList;
import java.util.List;

/**
 * Runs a policy on sequences and really frees what it evicts: {@link CompressionPolicy#select} then
 * {@link Selection#applyTo}. Owns a {@link PolicyKernels} workspace, so it is confined to the creating thread; close
 * it when done.
 */
public final class Compressor implements AutoCloseable {
    private final PolicyKernels kernels;

    public Compressor() {
        this.kernels = PolicyKernels.create();
    }

    /** The kernels this compressor uses (for callers composing their own steps). */
    public PolicyKernels kernels() {
        return kernels;
    }

    /**
     * Compresses one sequence: selects with {@code policy} on {@code context} (read from this sequence, e.g. with
     * {@link SequenceContext#read}) and retains the selection.
     */
    public Selection compress(Sequence sequence, CompressionPolicy policy, SequenceContext context, Budget budget) {
        if (policy == null) {
            throw new PolicyException("compress needs a policy (got null)");
        }
        Selection selection = policy.select(context, budget, kernels);
        selection.applyTo(sequence);
        return selection;
    }

    /**
     * Compresses a batch: each sequence with its own context and its own budget (a fraction resolves against that
     * sequence's own lengths; Ada-KV allocates per sequence). All selections are made before any is applied, so
     * bad input for any sequence leaves every sequence unchanged.
     */
    public List<Selection> compressBatch(List<Sequence> sequences, CompressionPolicy policy,
                                         List<SequenceContext> contexts, List<Budget> budgets) {
        if (sequences == null || contexts == null || budgets == null || policy == null) {
            throw new PolicyException("compressBatch needs sequences, a policy, contexts and budgets (got null)");
        }
        if (sequences.size() != contexts.size() || sequences.size() != budgets.size()) {
            throw new PolicyException("need one context and one budget per sequence: " + sequences.size()
                    + " sequences, " + contexts.size() + " contexts, " + budgets.size() + " budgets");
        }
        List<Selection> selections = new ArrayList<>(sequences.size());
        for (int i = 0; i < sequences.size(); i++) {
            selections.add(policy.select(contexts.get(i), budgets.get(i), kernels));
        }
        for (int i = 0; i < sequences.size(); i++) {
            selections.get(i).applyTo(sequences.get(i));
        }
        return selections;
    }

    @Override
    public void close() {
        kernels.close();
    }
}
