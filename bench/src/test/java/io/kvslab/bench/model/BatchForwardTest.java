package io.kvslab.bench.model;

import io.kvslab.Attention;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The serving path's batched runner ({@link BatchForward}: SIMD products over the batch, one batched kernel call per
 * layer) against single sequences: for batches of 1, 3 and 16 rows with prompts and generation lengths that differ
 * (so rows join with different positions and leave at different steps, and the batch shrinks), every row's logits at
 * every step are bit for bit those of the same request run alone through the scalar runner (one row, no SIMD) with
 * the same kernel, and its greedy tokens are those of the independent reference ({@link Session#reference}: scalar
 * Java products, Java KV arrays) and, for the golden prompts, llama2.c's.
 */
class BatchForwardTest {
    private static final String[] PROMPTS = {"Once upon a time", "Lily and Ben", "", "The little dog",
            "Tom had a red ball", "One day, a girl named Sue went to the park"};

    /** One request: its prompt tokens (BOS first), how many tokens it generates, and what it produced. */
    private static final class Row {
        final String text;
        final int[] prompt;
        final int steps;
        final List<Integer> tokens = new ArrayList<>();
        final List<float[]> logits = new ArrayList<>();
        Sequence sequence;
        StoreKvCache cache;
        long position;
        int pending;

        Row(String text, int[] prompt, int steps) {
            this.text = text;
            this.prompt = prompt;
            this.steps = steps;
        }
    }

    @ParameterizedTest(name = "batch of {0}")
    @ValueSource(ints = {1, 3, 16})
    void batchedRowsEqualSingleSequences(int batch) {
        LoadedModel lm = SharedModels.bin();
        LlamaModel m = lm.model();
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            String text = PROMPTS[i % PROMPTS.length];
            rows.add(new Row(text, lm.tokenizer().encode(text, true, false), 12 + 9 * (i % 5)));
        }
        run(m, rows, batch, true);
        List<Row> alone = new ArrayList<>();
        for (Row r : rows) {
            Row single = new Row(r.text, r.prompt, r.steps);
            run(m, List.of(single), 1, false);
            alone.add(single);
        }
        assertTrue(new BatchForward(m, MatMul.JAVA, 1, 64).simd(),
                "the batched runner uses the SIMD products (the module is on in the tests)");
        for (int i = 0; i < batch; i++) {
            Row r = rows.get(i);
            Row a = alone.get(i);
            assertEquals(r.steps, r.logits.size());
            for (int s = 0; s < r.steps; s++) {
                assertArrayEquals(a.logits.get(s), r.logits.get(s), "row " + i + " logits at step " + s);
            }
            assertEquals(a.tokens, r.tokens, "row " + i);
            assertEquals(referenceTokens(m, r.prompt, r.steps), r.tokens, "row " + i + " against the reference");
        }
        int goldenRows = 0;
        for (SharedModels.Golden g : SharedModels.goldens()) {
            if (g.temperature() != 0) {
                continue;
            }
            for (Row r : rows) {
                if (g.prompt().equals(r.text)) {
                    // the golden's ids list the prompt tokens (BOS excluded), then the generated ones
                    int[] expected = Arrays.copyOfRange(g.ids(), r.prompt.length - 1,
                            Math.min(g.ids().length, r.prompt.length - 1 + r.steps));
                    int[] got = r.tokens.stream().mapToInt(Integer::intValue).limit(expected.length).toArray();
                    assertArrayEquals(expected, got, g.file());
                    goldenRows++;
                }
            }
        }
        assertTrue(goldenRows >= 1, "at least one row runs a golden prompt");
    }

    /**
     * Prefills every row, then decodes all unfinished rows together each step (greedy) until each has generated
     * {@code steps} tokens; records each step's logits.
     */
    private static void run(LlamaModel m, List<Row> rows, int maxBatch, boolean simd) {
        ModelConfig c = m.config();
        KvLayout layout = StoreKvCache.layout(c, DType.F32);
        int vocab = c.vocabSize();
        try (KvStore store = KvStore.open(layout, StoreConfig.defaults().withSlabBytes(1 << 20));
             Attention prefillKernel = Attention.create(1);
             Attention decodeKernel = Attention.create(2)) {
            BatchForward forward = new BatchForward(m, MatMul.JAVA, maxBatch, 64, simd);
            StoreBatchAttention batchAttention = new StoreBatchAttention(decodeKernel, layout);
            float[] logits = new float[maxBatch * vocab];
            for (Row r : rows) {
                r.sequence = store.newSequence();
                r.cache = new StoreKvCache(r.sequence, KernelAttention.borrowing(prefillKernel));
                for (int off = 0; off < r.prompt.length; off += 64) {
                    int n = Math.min(64, r.prompt.length - off);
                    forward.prefill(r.prompt, off, n, off, r.cache, logits);
                }
                r.position = r.prompt.length;
                take(r, logits, 0, vocab);
            }
            int[] tokens = new int[maxBatch];
            long[] positions = new long[maxBatch];
            Sequence[] sequences = new Sequence[maxBatch];
            Row[] live = new Row[maxBatch];
            while (true) {
                int n = 0;
                for (Row r : rows) {
                    if (r.tokens.size() < r.steps) {
                        live[n] = r;
                        tokens[n] = r.pending;
                        positions[n] = r.position;
                        sequences[n] = r.sequence;
                        n++;
                    }
                }
                if (n == 0) {
                    break;
                }
                RuntimeException[] failures = new RuntimeException[n];
                forward.decode(tokens, positions, batchAttention.rows(sequences, n), n, logits, failures);
                for (int t = 0; t < n; t++) {
                    assertEquals(null, failures[t]);
                    live[t].position++;
                    take(live[t], logits, t * vocab, vocab);
                }
            }
            for (Row r : rows) {
                r.cache.close();
            }
        }
    }

    private static void take(Row r, float[] logits, int off, int vocab) {
        float[] l = Arrays.copyOfRange(logits, off, off + vocab);
        r.logits.add(l);
        int best = 0;
        for (int i = 1; i < vocab; i++) {
            if (l[i] > l[best]) {
                best = i;
            }
        }
        r.tokens.add(best);
        r.pending = best;
    }

    /** The reference runner's greedy tokens for the prompt (argmax, first of equals, as llama2.c). */
    private static List<Integer> referenceTokens(LlamaModel m, int[] prompt, int steps) {
        List<Integer> out = new ArrayList<>();
        try (Session s = Session.reference(m)) {
            float[] l = s.prefill(prompt);
            for (int i = 0; i < steps; i++) {
                int best = 0;
                for (int j = 1; j < l.length; j++) {
                    if (l[j] > l[best]) {
                        best = j;
                    }
                }
                out.add(best);
                if (i + 1 < steps) {
                    l = s.step(best);
                }
            }
        }
        return out;
    }
}
