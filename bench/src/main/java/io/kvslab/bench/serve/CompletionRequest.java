package io.kvslab.bench.serve;

import java.util.List;

/**
 * A validated {@code POST /v1/completions} request.
 *
 * @param promptTokens    the encoded prompt, BOS first (never empty)
 * @param maxTokens       tokens to generate at most (>= 1, fits the context with the prompt)
 * @param temperature     0 = greedy
 * @param topP            nucleus threshold; 1 samples the whole distribution
 * @param seed            sampler seed (non-zero)
 * @param stops           strings that end the completion (not included in the text); may be empty
 * @param stream          answer with server-sent events
 * @param includeUsage    streaming only: send a last chunk with {@code usage} ({@code stream_options.include_usage})
 * @param returnTokenIds  KVSlab extension: add the generated {@code token_ids} to each choice
 */
record CompletionRequest(int[] promptTokens, int maxTokens, float temperature, float topP, long seed, List<String> stops,
                         boolean stream, boolean includeUsage, boolean returnTokenIds) {
    boolean greedy() {
        return temperature == 0.0f;
    }
}
