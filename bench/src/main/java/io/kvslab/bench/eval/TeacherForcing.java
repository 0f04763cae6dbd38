package io.kvslab.bench.eval;

import io.kvslab.bench.model.Session;

import java.util.function.Consumer;

/**
 * Teacher-forced runs: the model reads a fixed token sequence (its own predictions are ignored) and every step's
 * logits are kept, so two runs over the same tokens can be compared step by step.
 */
public final class TeacherForcing {
    private TeacherForcing() {}

    /**
     * Feeds {@code tokens[0 .. prefillLength)} as one prefill (in the session's chunks), calls {@code afterPrefill}
     * (for example to compress the session's KV cache; may be null), then feeds the remaining tokens one at a time.
     *
     * @return {@code logits[i]} = the model's prediction after {@code tokens[0..i]}, {@code [tokens.length][vocab]}
     */
    public static float[][] run(Session session, int[] tokens, int prefillLength, Consumer<Session> afterPrefill) {
        if (prefillLength < 1 || prefillLength > tokens.length) {
            throw new IllegalArgumentException("prefill length must be in [1, " + tokens.length + "], got " + prefillLength);
        }
        float[][] logits = new float[tokens.length][];
        float[][] prefill = session.prefillAll(java.util.Arrays.copyOf(tokens, prefillLength));
        System.arraycopy(prefill, 0, logits, 0, prefillLength);
        if (afterPrefill != null) {
            afterPrefill.accept(session);
        }
        for (int i = prefillLength; i < tokens.length; i++) {
            logits[i] = session.step(tokens[i]);
        }
        return logits;
    }
}
