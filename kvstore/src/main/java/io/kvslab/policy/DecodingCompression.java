package io.kvslab.policy;

import io.kvslab.KvArgumentException;
import io.kvslab.Sequence;

import java.util.function.IntFunction;

/**
 * Decoding-time compression of one sequence (kvpress's DecodingPress): every {@code interval} decoded tokens, if a
 * (layer, KV head) holds more than the target, the policy compresses the sequence down to {@code Budget.tokens(
 * target)} (a dynamic policy runs with {@link Budget#dynamic()} instead). The total kept is then exactly the
 * budget: {@code target} rows per (layer, KV head) on average, redistributed by Ada-KV within a layer and by
 * PyramidKV across layers (both pool the token budget, so a head or layer below the target leaves its share to
 * the others instead of shrinking the total). Keeps the step count, so use one instance
 * per sequence.
 */
public final class DecodingCompression {
    private final CompressionPolicy policy;
    private final int interval;
    private final int targetRows;
    private long steps;

    /**
     * A schedule that compresses every {@code interval} decoded tokens back to {@code targetRows} rows.
     *
     * @param policy     the policy to run
     * @param interval   decoded tokens between two compressions (>= 1)
     * @param targetRows rows per (layer, KV head) after a compression (>= 1; ignored by a dynamic policy)
     * @throws KvArgumentException if {@code policy} is null or a count is below 1
     */
    public DecodingCompression(CompressionPolicy policy, int interval, int targetRows) {
        if (policy == null) {
            throw new KvArgumentException("decoding compression needs a policy (got null)");
        }
        if (interval < 1 || targetRows < 1) {
            throw new KvArgumentException("interval and targetRows must be >= 1, got " + interval + " and " + targetRows);
        }
        this.policy = policy;
        this.interval = interval;
        this.targetRows = targetRows;
    }

    /**
     * Decoded tokens seen so far.
     *
     * @return the number of {@link #afterToken} calls, {@code >= 0}
     */
    public long steps() {
        return steps;
    }

    /**
     * Call once per decoded token, after it was appended to every layer. On every {@code interval}-th call compresses
     * when needed (layer at a time, {@link Compressor#compress(Sequence, CompressionPolicy, Budget, IntFunction)})
     * and returns what it did; otherwise returns null.
     *
     * @param inputs layer to the policy's inputs (window queries from a {@link RecentQueries}, W_o from the model);
     *               read only when a compression runs
     * @param sequence the open sequence being decoded
     * @param compressor the compressor to run the policy with (on this thread)
     * @return what the compression did, or {@code null} when this call did not compress
     */
    public CompressionResult afterToken(Sequence sequence, Compressor compressor,
                                        IntFunction<LayerInputs> inputs) {
        steps++;
        if (steps % interval != 0) {
            return null;
        }
        Budget budget = policy.dynamicBudget() ? Budget.dynamic() : Budget.tokens(targetRows);
        if (!policy.dynamicBudget() && !overTarget(sequence)) {
            return null;
        }
        return compressor.compress(sequence, policy, budget, inputs);
    }

    private boolean overTarget(Sequence sequence) {
        for (int l = 0; l < sequence.layout().layers(); l++) {
            for (int h = 0; h < sequence.layout().kvHeads(); h++) {
                if (sequence.length(l, h) > targetRows) {
                    return true;
                }
            }
        }
        return false;
    }
}
