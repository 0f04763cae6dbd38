package io.kvslab.bench.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * llama2.c's {@code generate} loop over a {@link Session}: the prompt (BOS first) is fed in chunks, then tokens are
 * sampled one at a time until {@code steps} positions have been produced or the model emits BOS.
 */
public final class Generator {
    private Generator() {}

    /**
     * @param steps  positions to run, prompt included; 0 or more than the context means the whole context (llama2.c's rule)
     * @param pieces receives each printable piece as it is produced (may be null)
     * @throws ContextOverflowException if the prompt alone does not fit in the context (a prompt of more UTF-8 bytes
     *                                   than {@link Tokenizer#maxTextBytes} allows is refused before it is encoded)
     */
    public static Generation generate(Session session, Tokenizer tokenizer, String prompt, int steps, Sampler sampler,
                                      Consumer<byte[]> pieces) {
        int context = session.model().config().contextLength();
        if (steps <= 0 || steps > context) {
            steps = context;
        }
        if (session.position() != 0) {
            throw new IllegalStateException("generate needs a fresh session; this one is at position " + session.position());
        }
        String tooLong = tokenizer.lengthProblem(prompt, context);   // before the encoding's work grows with it
        if (tooLong != null) {
            throw new ContextOverflowException(tooLong + " (" + session.model().name() + ")");
        }
        int[] prompt0 = tokenizer.encode(prompt, true, false);
        if (prompt0.length > context) {
            throw new ContextOverflowException("the prompt encodes to " + prompt0.length + " tokens (BOS included) but "
                    + session.model().name() + "'s context length is " + context + " tokens");
        }
        int bos = tokenizer.bos();
        // grown as tokens come: steps may be a header's context length that no run ever reaches
        IntStream.Builder ids = IntStream.builder();
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        // run.c: at position pos the model reads token prompt[pos]; while pos < prompt length - 1 the "next" token is
        // the prompt's, afterwards it is sampled. Feed the prompt positions in one prefill.
        int fed = Math.min(prompt0.length, steps);
        long t0 = System.nanoTime();
        float[] logits = session.prefill(Arrays.copyOf(prompt0, fed));
        long t1 = System.nanoTime();
        int token = prompt0[0];
        boolean stopped = false;
        // forced tokens: prompt[1 .. fed-1], plus prompt[fed] when the prompt is longer than the steps
        int forced = fed < prompt0.length ? fed : fed - 1;
        for (int pos = 0; pos < forced; pos++) {
            int next = prompt0[pos + 1];
            if (next == bos) {
                stopped = true;
                break;
            }
            emit(tokenizer, token, next, ids, text, pieces);
            token = next;
        }
        int pos = fed - 1;
        if (!stopped && fed == prompt0.length) {
            while (true) {
                int next = sampler.sample(logits);
                pos++;
                if (next == bos) {
                    break;
                }
                emit(tokenizer, token, next, ids, text, pieces);
                token = next;
                if (pos >= steps) {
                    break;
                }
                logits = session.step(token);
            }
        }
        long t2 = System.nanoTime();
        return new Generation(prompt0, ids.build().toArray(), text.toString(StandardCharsets.UTF_8),
                (int) session.position(), t1 - t0, t2 - t1);
    }

    private static void emit(Tokenizer tokenizer, int token, int next, IntStream.Builder ids,
                             ByteArrayOutputStream text,
                             Consumer<byte[]> pieces) {
        ids.add(next);
        byte[] p = tokenizer.decode(token, next);
        if (Tokenizer.printable(p)) {
            text.writeBytes(p);
            if (pieces != null) {
                pieces.accept(p);
            }
        }
    }
}
