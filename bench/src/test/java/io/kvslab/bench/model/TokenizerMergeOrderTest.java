package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Tokenizer#encode}'s heap-ordered merge against {@link QuadraticEncoder}, a transcription of llama2.c's
 * quadratic loop: the same token ids on the goldens' prompts, on thousands of random strings, on random tiny
 * vocabularies full of tied scores, and on hand-built vocabularies where a tie between pairs at different positions
 * decides the result.
 */
class TokenizerMergeOrderTest {
    @Test
    void goldenPromptsEncodeAsLlama2c() {
        for (LoadedModel m : new LoadedModel[]{SharedModels.bin(), SharedModels.gguf()}) {
            Tokenizer t = m.tokenizer();
            QuadraticEncoder ref = new QuadraticEncoder(t);
            for (SharedModels.Golden g : SharedModels.goldens()) {
                for (boolean bos : new boolean[]{true, false}) {
                    assertArrayEquals(ref.encode(g.prompt(), bos, !bos), t.encode(g.prompt(), bos, !bos), g.file());
                }
            }
        }
    }

    /** tok512 has 512 pieces but only 253 distinct scores: ties between pairs are everywhere. */
    @Test
    void randomStringsEncodeAsLlama2cOnTok512() {
        Tokenizer t = SharedModels.bin().tokenizer();
        QuadraticEncoder ref = new QuadraticEncoder(t);
        Random r = new Random(20240601);
        List<String> words = new ArrayList<>();
        for (int id = 3; id < t.vocabSize(); id++) {
            String p = new String(t.piece(id), StandardCharsets.UTF_8).trim();
            if (!p.isEmpty() && !p.startsWith("<0x")) {
                words.add(p);
            }
        }
        words.addAll(List.of("Once", "upon", "a", "time", "Lily", "Ben", "park", "happy", "little", "the", "and"));
        check(t, ref, "");
        for (int i = 0; i < 3000; i++) {
            check(t, ref, randomText(r, words, 1 + r.nextInt(i < 2900 ? 60 : 300)));
        }
    }

    /** Random vocabularies over a tiny alphabet, scores from a handful of values (-0.0, 0.0 and -1e10 among them). */
    @Test
    void randomTinyVocabulariesEncodeAsLlama2c() {
        Random r = new Random(7);
        float[] scoreSet = {0f, -0f, -1f, -2f, -1e10f, -2e10f, 3f};
        for (int v = 0; v < 200; v++) {
            List<String> extra = new ArrayList<>(List.of("a", "b", "c"));
            if (r.nextInt(4) > 0) {
                extra.add(" ");
            }
            int more = 5 + r.nextInt(40);
            for (int i = 0; i < more; i++) {
                StringBuilder p = new StringBuilder();
                int len = 2 + r.nextInt(4);
                for (int k = 0; k < len; k++) {
                    p.append(" abc".charAt(r.nextInt(4)));
                }
                extra.add(p.toString()); // duplicates on purpose: the first one counts
            }
            float[] scores = new float[extra.size()];
            for (int i = 0; i < scores.length; i++) {
                scores[i] = scoreSet[r.nextInt(scoreSet.length)];
            }
            Tokenizer t = vocabulary(extra.toArray(String[]::new), scores);
            QuadraticEncoder ref = new QuadraticEncoder(t);
            for (int i = 0; i < 30; i++) {
                StringBuilder s = new StringBuilder();
                int len = r.nextInt(40);
                for (int k = 0; k < len; k++) {
                    s.append(" abcé".charAt(r.nextInt(5)));
                }
                check(t, ref, s.toString());
            }
        }
    }

    /** Equal scores at different positions: the leftmost pair merges first, wherever and whenever it was formed. */
    @Test
    void tiesGoToTheLeftmostPair() {
        // "aba" -> [" ", a, b, a]: ab and ba both score 0; ab is further left -> [" ", ab, a] ("aba" is no piece).
        // Picking ba (right-most, or the lower id) would give [" ", a, ba].
        Tokenizer t = vocabulary(new String[]{" ", "a", "b", "ba", "ab"}, new float[]{0, 0, 0, 0, 0});
        assertArrayEquals(new int[]{X, X + 4, X + 1}, t.encode("aba", false, false));
        // "abab" -> [" ", a, b, a, b]: ab@1, ba@2, ab@3 tie -> ab@1 -> [" ", ab, a, b] -> ab@3 -> [" ", ab, ab]
        assertArrayEquals(new int[]{1, X, X + 4, X + 4}, t.encode("abab", true, false));

        // "abcd" -> [" ", a, b, c, d]: ab (-1) first -> [" ", ab, c, d]. Now abc (formed by that merge) and cd
        // (queued from the start) tie at -2: abc is further left -> [" ", abc, d]. Taking the older pair first would
        // give [" ", ab, cd].
        Tokenizer u = vocabulary(new String[]{" ", "a", "b", "c", "d", "cd", "ab", "abc"},
                new float[]{0, 0, 0, 0, 0, -2, -1, -2});
        assertArrayEquals(new int[]{X, X + 7, X + 4}, u.encode("abcd", false, false));
        // same on the right: "dabcd" -> [" ", d, a, b, c, d] -> ab -> [" ", d, ab, c, d]: abc@2 and cd@4 tie -> abc
        assertArrayEquals(new int[]{X, X + 4, X + 7, X + 4}, u.encode("dabcd", false, false));

        // -0.0 ties 0.0 (C's > compares them equal): ab (-0.0) is further left than bc (0.0) -> [" ", ab, c];
        // a comparison that orders -0.0 below 0.0 (Float.compare) would merge bc.
        Tokenizer z = vocabulary(new String[]{" ", "a", "b", "c", "ab", "bc"}, new float[]{0, 0, 0, 0, -0f, 0f});
        assertArrayEquals(new int[]{X, X + 4, X + 3}, z.encode("abc", false, false));

        // llama2.c's best score starts at -1e10: a pair scoring -1e10 or less never merges
        Tokenizer low = vocabulary(new String[]{" ", "a", "b", "ab", " a"}, new float[]{0, 0, 0, -1e10f, -2e10f});
        assertArrayEquals(new int[]{X, X + 1, X + 2}, low.encode("ab", false, false));

        for (Tokenizer v : List.of(t, u, z, low)) {
            QuadraticEncoder ref = new QuadraticEncoder(v);
            for (String s : List.of("aba", "abab", "abcd", "dabcd", "abc", "ab", "ababab cdab", "")) {
                check(v, ref, s);
            }
        }
    }

    /** {@link Tokenizer#utf8Length} is the length of {@code getBytes(UTF_8)}, lone surrogates ('?') included. */
    @Test
    void utf8LengthIsTheEncodedLength() {
        Random r = new Random(3);
        List<String> words = List.of("a", "little", "Lily", "é", "日本", "🙂");
        for (int i = 0; i < 3000; i++) {
            String text = randomText(r, words, r.nextInt(50));
            // sometimes a trailing lone surrogate, high or low
            String s = r.nextInt(10) == 0 ? text + (char) (0xD800 + r.nextInt(0x800)) : text;
            assertEquals(s.getBytes(StandardCharsets.UTF_8).length, Tokenizer.utf8Length(s), () -> "text " + escape(s));
        }
        assertEquals(0, Tokenizer.utf8Length(""));
        assertEquals(4, Tokenizer.utf8Length("\uD83D\uDE42"));
        assertEquals(2, Tokenizer.utf8Length("\uDE42\uD83D"));
    }

    /**
     * The early rejection's premise: a text of more than {@link Tokenizer#maxTextBytes maxTextBytes(n)} UTF-8 bytes
     * encodes to more than n tokens. Checked on random text, on runs of the longest pieces (tok512's " little", 7
     * bytes, and "little" without its space) and on byte-fallback text in a tiny vocabulary.
     */
    @Test
    void noTextEncodesToFewerTokensThanItsLengthAllows() {
        Tokenizer t = SharedModels.bin().tokenizer();
        assertEquals(7, t.maxPieceBytes());
        assertEquals(512L * 7, t.maxTextBytes(512));
        Random r = new Random(11);
        List<String> words = List.of("little", " little", "Once", "upon", "a", "time", "é", "🙂", "日本", "!");
        List<String> texts = new ArrayList<>(List.of("", "little", "little little little", " little".repeat(300),
                "little".repeat(200), "🙂".repeat(100), "a"));
        for (int i = 0; i < 1000; i++) {
            texts.add(randomText(r, words, r.nextInt(200)));
        }
        Tokenizer tiny = vocabulary(new String[]{" ", "a", "b", "ab", "abab", " abab"}, new float[]{0, 0, 0, -1, -2, -3});
        texts.addAll(List.of("abab abab", "abab", " abab", "ab ab", "bbbb"));
        for (Tokenizer v : List.of(t, tiny)) {
            for (String s : texts) {
                int tokens = v.encode(s, false, false).length;
                assertTrue(Tokenizer.utf8Length(s) <= v.maxTextBytes(tokens),
                        () -> escape(s) + ": " + tokens + " tokens of at most " + v.maxPieceBytes() + " bytes");
            }
        }
        // the dummy space covers no text: "abab abab" (9 bytes) -> [" abab", " abab"], 2 tokens of at most 6 bytes
        // (the <0xHH> pieces are the longest)
        assertArrayEquals(new int[]{X + 5, X + 5}, tiny.encode("abab abab", false, false));
        assertEquals(12, tiny.maxTextBytes(2));
    }

    /** First id of the extra pieces in {@link #vocabulary}: after unk, BOS, EOS and the 256 byte pieces. */
    private static final int X = 3 + 256;

    /** unk, BOS 1, EOS 2, {@code <0x00>..<0xFF>} at 3..258 (score 0), then {@code extra} from {@link #X}. */
    static Tokenizer vocabulary(String[] extra, float[] extraScores) {
        byte[][] pieces = new byte[X + extra.length][];
        float[] scores = new float[pieces.length];
        pieces[0] = "<unk>".getBytes(StandardCharsets.UTF_8);
        pieces[1] = "\n<s>\n".getBytes(StandardCharsets.UTF_8);
        pieces[2] = "\n</s>\n".getBytes(StandardCharsets.UTF_8);
        for (int b = 0; b < 256; b++) {
            pieces[3 + b] = String.format("<0x%02X>", b).getBytes(StandardCharsets.UTF_8);
        }
        for (int i = 0; i < extra.length; i++) {
            pieces[X + i] = extra[i].getBytes(StandardCharsets.UTF_8);
            scores[X + i] = extraScores[i];
        }
        return new Tokenizer(pieces, scores, 1, 2);
    }

    private static void check(Tokenizer t, QuadraticEncoder ref, String s) {
        assertArrayEquals(ref.encode(s, true, false), t.encode(s, true, false), () -> "text " + escape(s));
        assertArrayEquals(ref.encode(s, false, true), t.encode(s, false, true), () -> "text " + escape(s));
    }

    /** Words, runs of spaces, punctuation, digits, Latin-1, CJK, 4-byte code points and the odd lone surrogate. */
    static String randomText(Random r, List<String> words, int parts) {
        StringBuilder s = new StringBuilder();
        String punctuation = ".,;:!?'\"()-\n\t";
        for (int i = 0; i < parts; i++) {
            int kind = r.nextInt(20);
            if (kind < 10) {
                s.append(words.get(r.nextInt(words.size())));
            } else if (kind < 13) {
                s.append(" ".repeat(1 + r.nextInt(3)));
            } else if (kind < 15) {
                s.append(punctuation.charAt(r.nextInt(punctuation.length())));
            } else if (kind == 15) {
                s.append((char) ('0' + r.nextInt(10)));
            } else if (kind == 16) {
                s.append((char) (0xA0 + r.nextInt(0x700 - 0xA0)));        // 2-byte UTF-8
            } else if (kind == 17) {
                s.append((char) (0x3000 + r.nextInt(0x6000)));            // 3-byte UTF-8
            } else if (kind == 18) {
                s.appendCodePoint(0x10000 + r.nextInt(0x10FFFF - 0x10000)); // 4-byte UTF-8
            } else {
                s.append(r.nextInt(8) == 0 ? (char) (0xD800 + r.nextInt(0x800)) : (char) r.nextInt(0x80));
            }
            if (r.nextBoolean()) {
                s.append(' ');
            }
        }
        return s.toString();
    }

    private static String escape(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().forEach(c -> b.append(c >= 0x20 && c < 0x7F ? Character.toString(c) : String.format("\\u{%X}", c)));
        return b.append('"').toString();
    }
}
