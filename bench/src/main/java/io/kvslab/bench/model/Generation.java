package io.kvslab.bench.model;

/**
 * The result of {@link Generator#generate}: what llama2.c's {@code run} would print and the timings.
 *
 * @param promptTokens  the encoded prompt, BOS first
 * @param ids           every token after BOS, prompt tokens first, as llama2.c emits them (a sampled BOS ends the
 *                      run and is not listed)
 * @param text          the printed text (llama2.c's decode and safe_printf rules)
 * @param positions     tokens run through the model
 * @param prefillNanos  time to feed the prompt
 * @param decodeNanos   time for the token-by-token part (sampling included)
 */
public record Generation(int[] promptTokens, int[] ids, String text, int positions, long prefillNanos, long decodeNanos) {
    /** Tokens run through the model per second of wall time, prompt included. */
    public double tokensPerSecond() {
        long total = prefillNanos + decodeNanos;
        return total == 0 ? 0 : positions * 1e9 / total;
    }

    /** Generated tokens per second in the token-by-token phase. */
    public double decodeTokensPerSecond() {
        int decoded = positions - Math.min(positions, promptTokens.length);
        return decodeNanos == 0 ? 0 : decoded * 1e9 / decodeNanos;
    }
}
