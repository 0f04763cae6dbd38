package io.kvslab.policy;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.Sequence;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * Runs a policy on sequences and really frees what it evicts, one layer at a time.
 *
 * <p>{@link #compress(Sequence, CompressionPolicy, Budget, IntFunction)} first counts every (layer, KV head)'s rows
 * and protected rows (lengths, plus positions when the observation window is protected; no keys or
 * values), which is the only cross-layer information any rule needs (PyramidKV's). Then, for each layer in turn, it
 * reads that layer's keys and values from block memory ({@link LayerContext#read}), scores, budgets and selects, and
 * applies the selection with {@code Sequence.keep(layer, rows)}, which reserves the fresh blocks of every head of
 * the layer before changing any: a layer is compressed all or nothing. The heap holds one layer's rows at a time,
 * and the result is exactly {@link CompressionPolicy#select} on the whole sequence followed by
 * {@link Selection#applyTo}.
 *
 * <p>Owns the native scratch of the policy kernels (window attention, value norms, the W_o Gram matrices of
 * {@link ValueNorm#L2}), which {@link CompressionPolicy#select} on an in-memory context uses too; so it runs one
 * call at a time, like {@link io.kvslab.Attention}: a second call while one runs on another thread (or
 * {@link #close()} during a call) fails with {@link ConcurrentUseException}. It may be handed from thread to thread
 * between calls (a pool's worker); give each thread that compresses concurrently its own. Close it when done: a
 * call after that fails with {@link ClosedException}.
 */
public final class Compressor implements AutoCloseable {
    private final PolicyWorkspace workspace;
    /** Set for the duration of a call or of close: the workspace (scratch, Gram cache) serves one call at a time. */
    private final AtomicBoolean inUse = new AtomicBoolean();
    private volatile boolean closed;

    /** A compressor with its own workspace (native scratch for the policy kernels). Close it when done. */
    public Compressor() {
        this.workspace = PolicyWorkspace.create();
    }

    /** The workspace, without the one-call guard: for this package's tests, which run on one thread. */
    PolicyWorkspace workspace() {
        return workspace;
    }

    /**
     * Runs {@code call} with this compressor's workspace as its one call at a time (see the class comment).
     */
    <T> T exclusive(Function<PolicyWorkspace, T> call) {
        if (!inUse.compareAndSet(false, true)) {
            throw new ConcurrentUseException("this Compressor is already running a call on another thread; a "
                    + "Compressor runs one call at a time: give each thread its own");
        }
        try {
            if (closed) {
                throw new ClosedException("this Compressor");
            }
            return call.apply(workspace);
        } finally {
            inUse.set(false);
        }
    }

    /**
     * {@link #compress(Sequence, CompressionPolicy, Budget, IntFunction)} for a policy that needs no inputs.
     *
     * @param sequence an open sequence
     * @param policy the policy
     * @param budget a fraction or token count, or {@link Budget#dynamic()} for a dynamic policy
     * @return the rows of every (layer, KV head) before and after
     */
    public CompressionResult compress(Sequence sequence, CompressionPolicy policy, Budget budget) {
        return compress(sequence, policy, budget, layer -> LayerInputs.none());
    }

    /**
     * Compresses {@code sequence} to {@code budget}, one layer at a time (see the class comment).
     *
     * <p>If it fails (bad input, a memory limit hit while rebuilding a table shared with a fork), the layers before
     * the failing one stay compressed, the failing layer and the later ones are exactly as before. Missing inputs
     * (a window or W_o the policy needs) are detected before any layer changes.
     *
     * @param inputs layer to the window queries and W_o the policy needs ({@link CompressionPolicy#windowQueries},
     *               {@link CompressionPolicy#needsOutputProjection}); may return null for a layer with none
     * @param sequence an open sequence
     * @param policy the policy
     * @param budget a fraction or token count, or {@link Budget#dynamic()} for a dynamic policy
     * @return the rows of every (layer, KV head) before and after
     */
    public CompressionResult compress(Sequence sequence, CompressionPolicy policy, Budget budget,
                                      IntFunction<LayerInputs> inputs) {
        return exclusive(ws -> compressOne(sequence, policy, budget, inputs, ws));
    }

    private CompressionResult compressOne(Sequence sequence, CompressionPolicy policy, Budget budget,
                                          IntFunction<LayerInputs> inputs, PolicyWorkspace workspace) {
        RowCounts counts = prepare(sequence, policy, budget, inputs);
        int layers = counts.layers();
        int heads = sequence.layout().kvHeads();
        int[][] after = new int[layers][heads];
        for (int l = 0; l < layers; l++) {
            LayerContext layer = LayerContext.read(sequence, l, needed(policy, inputs, l), policy.readsRows());
            for (int h = 0; h < heads; h++) {
                if (layer.head(h).length() != counts.rows(l, h)) {
                    throw new KvArgumentException("layer " + l + " head " + h + " changed during the compression ("
                            + counts.rows(l, h) + " rows counted, " + layer.head(h).length() + " read); one "
                            + "writer at a time");
                }
            }
            int[][] kept = policy.selectLayer(layer, counts, budget, workspace);
            layer = null; // the rows are no longer needed: let the next layer reuse the heap
            sequence.keep(l, kept);
            for (int h = 0; h < heads; h++) {
                after[l][h] = kept[h].length;
            }
        }
        return new CompressionResult(counts.rows(), after);
    }

    /**
     * Compresses a batch: each sequence with its own inputs and its own budget (a fraction resolves against that
     * sequence's own lengths; Ada-KV allocates per sequence). Every sequence's inputs and budget are checked before
     * any sequence changes; then the sequences are compressed one after the other, each layer at a time.
     *
     * @param sequences open sequences of one store
     * @param policy the policy applied to each
     * @param inputs one entry per sequence, in the same order
     * @param budgets one entry per sequence, in the same order
     * @return one result per sequence, in order
     */
    public List<CompressionResult> compressBatch(List<Sequence> sequences, CompressionPolicy policy,
                                                 List<IntFunction<LayerInputs>> inputs, List<Budget> budgets) {
        if (sequences == null || inputs == null || budgets == null || policy == null) {
            throw new KvArgumentException("compressBatch needs sequences, a policy, inputs and budgets (got null)");
        }
        if (sequences.size() != inputs.size() || sequences.size() != budgets.size()) {
            throw new KvArgumentException("need one input and one budget per sequence: " + sequences.size()
                    + " sequences, " + inputs.size() + " inputs, " + budgets.size() + " budgets");
        }
        return exclusive(ws -> {
            for (int i = 0; i < sequences.size(); i++) {
                prepare(sequences.get(i), policy, budgets.get(i), inputs.get(i));
            }
            List<CompressionResult> results = new ArrayList<>(sequences.size());
            for (int i = 0; i < sequences.size(); i++) {
                results.add(compressOne(sequences.get(i), policy, budgets.get(i), inputs.get(i), ws));
            }
            return results;
        });
    }

    /** Checks the arguments and that every layer's inputs are present; returns the first pass's counts. */
    private RowCounts prepare(Sequence sequence, CompressionPolicy policy, Budget budget,
                              IntFunction<LayerInputs> inputs) {
        if (sequence == null || policy == null || budget == null || inputs == null) {
            throw new KvArgumentException("compress needs a sequence, a policy, a budget and inputs (got null; "
                    + "layer -> LayerInputs.none() for a policy that needs none)");
        }
        policy.checkBudget(budget);
        KvLayout layout = sequence.layout();
        long[] windowStarts = new long[layout.layers()];
        for (int l = 0; l < layout.layers(); l++) {
            windowStarts[l] = Long.MAX_VALUE;
            if (policy.fullLayers().contains(l)) {
                continue;
            }
            LayerInputs in = needed(policy, inputs, l);
            WindowQueries window = in.window();
            if (policy.windowQueries() > 0 && window == null) {
                throw new KvArgumentException(policy.name() + " needs the observation-window queries of layer " + l
                        + " (LayerInputs gave none)");
            }
            if (policy.needsOutputProjection() && in.outputProjection() == null) {
                throw new KvArgumentException(policy.name() + " needs W_o of layer " + l + " (LayerInputs gave none)");
            }
            windowStarts[l] = policy.windowStart(l, window);
        }
        return policy.countRows(sequence, windowStarts);
    }

    /**
     * The parts of layer {@code l}'s inputs the policy reads (what it does not read is not checked either); a policy
     * that reads none does not ask for them.
     */
    private static LayerInputs needed(CompressionPolicy policy, IntFunction<LayerInputs> inputs, int l) {
        if (policy.windowQueries() == 0 && !policy.needsOutputProjection()) {
            return LayerInputs.none();
        }
        LayerInputs in = inputs.apply(l);
        if (in == null) {
            return LayerInputs.none();
        }
        return new LayerInputs(policy.windowQueries() > 0 ? in.windowQueries() : null,
                policy.windowQueries() > 0 ? in.windowPositions() : null,
                policy.needsOutputProjection() ? in.outputProjection() : null);
    }

    /**
     * Frees the native scratch. Idempotent, from any thread; fails with {@link ConcurrentUseException} while a call
     * runs on another thread (nothing is freed then).
     */
    @Override
    public void close() {
        if (!inUse.compareAndSet(false, true)) {
            throw new ConcurrentUseException("this Compressor cannot be closed while a call on another thread runs "
                    + "with it; close it after the call returns");
        }
        try {
            if (!closed) {
                closed = true;
                workspace.close();
            }
        } finally {
            inUse.set(false);
        }
    }
}
