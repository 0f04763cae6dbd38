package io.kvslab.bench.model;

import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.function.IntBinaryOperator;

/**
 * llama2.c's BPE merge loop in O(n log n) instead of its O(n^2) rescan: the same merges in the same order. llama2.c
 * merges the adjacent pair whose merged token has the highest score, the leftmost of equal scores (its scan compares
 * with {@code >}), until no pair merges. Here the tokens form a linked list (a merge keeps the left node and unlinks
 * the right one, so nodes stay in text order and a node's index orders it against any other live node), and every
 * adjacency's candidate merge is queued once, when the adjacency appears, ordered by score (primitive {@code >}, so
 * -0.0 ties 0.0 as in C) then by left node. A queued pair is stale, and skipped, once either side has merged.
 */
final class BpeMerge {
    private BpeMerge() {}

    /** A queued merge of nodes {@code left} and {@code right}, holding {@code leftToken} and {@code rightToken}. */
    private record Candidate(int left, int right, int leftToken, int rightToken, int merged, float score) {}

    /** Higher score first ({@code >} and {@code <}, not Float.compare: -0.0 ties 0.0), then the leftmost. */
    private static int order(Candidate x, Candidate y) {
        if (x.score > y.score) {
            return -1;
        }
        if (x.score < y.score) {
            return 1;
        }
        return Integer.compare(x.left, y.left);
    }

    /**
     * Merges {@code tokens[0, n)} in place.
     *
     * @param scores  every token's score
     * @param mergeOf the token adjacent tokens a, b merge into, or -1 if they do not (asked once per distinct pair)
     * @return the number of tokens left at the front of {@code tokens}
     */
    static int merge(int[] tokens, int n, float[] scores, IntBinaryOperator mergeOf) {
        if (n < 2) {
            return n;
        }
        int[] tok = java.util.Arrays.copyOf(tokens, n);
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int k = 0; k < n; k++) {
            next[k] = k + 1 < n ? k + 1 : -1;
            prev[k] = k - 1;
        }
        // each distinct pair's merge is looked up once per call: text repeats, and a lookup builds a string
        Map<Long, Integer> pairs = new HashMap<>();
        PriorityQueue<Candidate> queue = new PriorityQueue<>(n, BpeMerge::order);
        for (int k = 0; k + 1 < n; k++) {
            offer(queue, pairs, tok, k, k + 1, scores, mergeOf);
        }
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            int left = c.left;
            int right = c.right;
            if (tok[left] != c.leftToken || next[left] != right || tok[right] != c.rightToken) {
                continue; // stale: one side merged since this pair was queued
            }
            tok[left] = c.merged;
            tok[right] = -1;
            int after = next[right];
            next[left] = after;
            if (after >= 0) {
                prev[after] = left;
            }
            if (prev[left] >= 0) {
                offer(queue, pairs, tok, prev[left], left, scores, mergeOf);
            }
            if (after >= 0) {
                offer(queue, pairs, tok, left, after, scores, mergeOf);
            }
        }
        int m = 0;
        for (int k = 0; k >= 0; k = next[k]) {
            tokens[m++] = tok[k];
        }
        return m;
    }

    /** Queues the merge of adjacent nodes {@code left}, {@code right} if their tokens merge. */
    private static void offer(PriorityQueue<Candidate> queue, Map<Long, Integer> pairs, int[] tok, int left,
                              int right, float[] scores, IntBinaryOperator mergeOf) {
        int a = tok[left];
        int b = tok[right];
        int merged = pairs.computeIfAbsent((long) a << 32 | (b & 0xFFFFFFFFL), k -> mergeOf.applyAsInt(a, b));
        if (merged >= 0) {
            queue.add(new Candidate(left, right, a, b, merged, scores[merged]));
        }
    }
}
