package io.kvslab.bench.serve;

/** What the scheduler hands to the HTTP thread answering a request, in order: texts, then one done or failed. */
sealed interface JobEvent {
    /** Newly final text (may be empty) and the token that produced it, or -1 for text flushed at the end. */
    record Text(String text, int token) implements JobEvent {}

    /** The completion ended normally; {@code finishReason} is "stop" (BOS or a stop string) or "length". */
    record Done(String finishReason, int promptTokens, int completionTokens) implements JobEvent {}

    /** The request failed after it was accepted; answered with OpenAI's error object. */
    record Failed(int status, String type, String code, String message) implements JobEvent {}
}
