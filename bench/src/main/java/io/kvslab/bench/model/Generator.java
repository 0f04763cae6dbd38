package io.kvslab.bench.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Consumer;

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
        // refuse a prompt too long to fit from its length alone, before the encoding's work grows with it
        long bytes = Tokenizer.utf8Length(prompt);
        if (bytes > tokenizer.maxTextBytes(context)) {
            throw new ContextOverflowException("the prompt of " + bytes + " bytes (UTF-8) cannot fit: "
                    + session.model().name() + "'s context length is " + context + " tokens (BOS included) of at most "
                    + tokenizer.maxPieceBytes() + " bytes each, so a prompt has at most "
                    + tokenizer.maxTextBytes(context) + " bytes");
        }
        int[] prompt0 = tokenizer.encode(prompt, true, false);
        if (prompt0.length > context) {
            throw new ContextOverflowException("the prompt encodes to " + prompt0.length + " tokens (BOS included) but "
                    + session.model().name() + "'s context length is " + context + " tokens");
        }
        int bos = tokenizer.bos();
        // grown as tokens come: steps may be a header's context length that no run ever reaches
        Ids ids = new Ids(Math.min(steps, 1024));
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
        return new Generation(prompt0, Arrays.copyOf(ids.a, ids.n), text.toString(StandardCharsets.UTF_8),
                (int) session.position(), t1 - t0, t2 - t1);
    }

    /** The generated ids so far: {@code a[0 .. n)}. */
    private static final class Ids {
        int[] a;
        int n;

        Ids(int capacity) {
            a = new int[Math.max(1, capacity)];
        }

        void add(int id) {
            if (n == a.length) {
                a = Arrays.copyOf(a, (int) Math.min(Integer.MAX_VALUE - 16, 2L * a.length));
            }
            a[n++] = id;
        }
    }

    private static void emit(Tokenizer tokenizer, int token, int next, Ids ids, ByteArrayOutputStream text,
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
