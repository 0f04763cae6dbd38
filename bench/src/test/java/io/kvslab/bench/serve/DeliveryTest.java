package io.kvslab.bench.serve;

import io.kvslab.bench.model.SharedModels;
import io.kvslab.bench.model.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * {@link Delivery}'s stream interval: the first token at once, then token events handed to the HTTP thread in groups
 * of N, and the end (with any held tokens before it) at once; the events, in order, are the same for every interval.
 */
class DeliveryTest {
    private static final Tokenizer TOKENIZER = SharedModels.bin().tokenizer();
    /** Token ids of ordinary pieces (no BOS, printable text). */
    private static final int[] TOKENS = TOKENIZER.encode(" the cat sat on the mat and the dog ran far away", false, false);

    private static Job job(int maxTokens) {
        Job j = new Job(new CompletionRequest(new int[]{TOKENIZER.bos()}, maxTokens, 0, 1, 1, List.of(), true, false,
                true), System.nanoTime());
        j.text = new CompletionText(List.of());
        j.previousToken = TOKENIZER.bos();
        return j;
    }

    /** Feeds every token, recording after each how many events the HTTP thread could see; returns the events. */
    private static List<JobEvent> feed(Delivery d, Job j, int[] tokens, List<Integer> visible) {
        for (int t : tokens) {
            d.accept(j, t);
            visible.add(j.events.size());
        }
        return new ArrayList<>(j.events);
    }

    @Test
    void tokensArriveInGroupsOfTheIntervalAndTheEndFlushesTheRest() {
        int n = 11;
        int[] tokens = java.util.Arrays.copyOf(TOKENS, n);
        List<Integer> every = new ArrayList<>();
        List<JobEvent> one = feed(new Delivery(TOKENIZER, new ServerMetrics(), false, 1), job(n), tokens, every);
        List<Integer> grouped = new ArrayList<>();
        List<JobEvent> four = feed(new Delivery(TOKENIZER, new ServerMetrics(), false, 4), job(n), tokens, grouped);
        // interval 1: one text event per token, and the 11th token ends the request ("length") with a done event
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12), every);
        // interval 4: token 1 at once; 2-4 held, handed over with 5; 6-8 with 9; 10 held, then 11 ends: all at once
        assertEquals(List.of(1, 1, 1, 1, 5, 5, 5, 5, 9, 9, 12), grouped);
        assertEquals(one, four, "the same events in the same order");
        assertInstanceOf(JobEvent.Done.class, four.getLast());
    }

    @Test
    void aFailureHandsOverHeldTokensFirst() {
        Delivery d = new Delivery(TOKENIZER, new ServerMetrics(), false, 8);
        Job j = job(100);
        for (int i = 0; i < 3; i++) {
            d.accept(j, TOKENS[i]);
        }
        assertEquals(1, j.events.size(), "tokens 2 and 3 are held");
        d.failMemory(j, "test");
        List<JobEvent> events = new ArrayList<>(j.events);
        assertEquals(4, events.size());
        for (int i = 0; i < 3; i++) {
            assertEquals(TOKENS[i], ((JobEvent.Text) events.get(i)).token());
        }
        assertEquals(503, ((JobEvent.Failed) events.get(3)).status());
    }
}
