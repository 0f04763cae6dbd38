package io.kvslab.bench.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class TokenizerTest {
    /** a, b, c, " ", and merges with chosen scores; BOS 1, EOS 2, bytes at 3..258. */
    private static Tokenizer handMade() {
        return TokenizerMergeOrderTest.vocabulary(new String[] {" ", "a", "b", "c", "ab", "bc", "abc", " a"},
                new float[] {0, 0, 0, 0, -3, -1, -2, -5});
    }

    private static final int SPACE = 259, A = 260, B = 261, C = 262, AB = 263, BC = 264, ABC = 265, SPACE_A = 266;

    @Test
    void mergesByHighestScoreFirst() {
        Tokenizer t = handMade();
        // "abc" -> [" ", a, b, c]: candidates " a" (-5), ab (-3), bc (-1): bc wins -> [" ", a, bc];
        // then " a" (-5) and "abc" (-2): abc wins -> [" ", abc]; " abc" is no piece: done.
        assertArrayEquals(new int[]{1, SPACE, ABC}, t.encode("abc", true, false));
        // "ab": [" ", a, b] -> ab (-3) beats " a" (-5) -> [" ", ab]; " ab" is no piece.
        assertArrayEquals(new int[]{SPACE, AB}, t.encode("ab", false, false));
        // "ca": [" ", c, a]: only " c"? no; "ca"? no -> unchanged
        assertArrayEquals(new int[]{1, SPACE, C, A, 2}, t.encode("ca", true, true));
        // "a": [" ", a] -> " a"
        assertArrayEquals(new int[]{SPACE_A}, t.encode("a", false, false));
        // empty text: no dummy space
        assertArrayEquals(new int[]{1}, t.encode("", true, false));
        assertEquals(B, t.encode("cb", false, false)[2]);
    }

    @Test
    void unknownCharactersFallBackToBytes() {
        Tokenizer t = handMade();
        // 'é' = C3 A9 is no piece: its two bytes become tokens 3 + 0xC3, 3 + 0xA9
        assertArrayEquals(new int[]{SPACE_A, 3 + 0xC3, 3 + 0xA9}, t.encode("aé", false, false));
        assertEquals(" aé", t.decode(0, t.encode("aé", false, false)));
    }

    @Test
    void decodeStripsTheLeadingSpaceAfterBosAndMapsBytePieces() {
        Tokenizer t = handMade();
        assertArrayEquals(new byte[]{'a'}, t.decode(1, SPACE_A));
        assertArrayEquals(new byte[]{' ', 'a'}, t.decode(A, SPACE_A));
        assertArrayEquals(new byte[]{(byte) 0xC3}, t.decode(A, 3 + 0xC3));
        // llama2.c's safe_printf drops single unprintable bytes in what it prints; decode keeps them
        assertEquals("a", t.render(1, new int[]{SPACE_A, 3 + 0xC3}));
        assertEquals("a\n", t.render(1, new int[]{SPACE_A, 3 + '\n'}));
    }

    @ParameterizedTest
    @ValueSource(strings = {"Once upon a time", "Lily and Ben went to the park.", "  two  spaces\tand a tab\nnew line",
            "Ünïcödé — “quotes” and emoji 🙂 and 日本語", "x", "123 + 456 = 579!", "\u0000nul"})
    void roundTripsOnStories260K(String text) {
        for (LoadedModel m : new LoadedModel[]{SharedModels.bin(), SharedModels.gguf()}) {
            Tokenizer t = m.tokenizer();
            int[] ids = t.encode(text, true, false);
            assertEquals(1, ids[0]);
            assertEquals(text, t.decode(ids[0], Arrays.copyOfRange(ids, 1, ids.length)), "round trip via " + m.model().name());
        }
    }

    @Test
    void ggufAndLlama2cTokenizersEncodeAlike() {
        Tokenizer bin = SharedModels.bin().tokenizer();
        Tokenizer gguf = SharedModels.gguf().tokenizer();
        for (String s : new String[]{"Once upon a time", "The cat sat on the mat, and the dog ran!", "é 🙂"}) {
            assertArrayEquals(bin.encode(s, true, true), gguf.encode(s, true, true), s);
        }
        for (int id = 3; id < bin.vocabSize(); id++) {
            assertArrayEquals(bin.piece(id), gguf.piece(id), "piece " + id);
            assertEquals(bin.score(id), gguf.score(id), "score " + id);
        }
    }

    @Test
    void promptsEncodeToTheGoldenPromptTokens() {
        for (SharedModels.Golden g : SharedModels.goldens()) {
            int[] ids = SharedModels.bin().tokenizer().encode(g.prompt(), true, false);
            int[] expected = Arrays.copyOf(g.ids(), ids.length - 1);
            assertArrayEquals(expected, Arrays.copyOfRange(ids, 1, ids.length), g.file());
        }
    }
}
