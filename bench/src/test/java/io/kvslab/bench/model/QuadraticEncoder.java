package io.kvslab.bench.model;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * An independent reference for {@link Tokenizer#encode}: llama2.c's {@code encode} from {@code run.c} transcribed
 * line by line, quadratic merge loop included (every merge rescans every adjacent pair, builds each concatenation and
 * takes the first pair whose score is strictly above the best so far, starting from -1e10). It reads only the
 * tokenizer's public vocabulary (pieces, scores, BOS, EOS), and follows the Java tokenizer's conventions where C's
 * differ: the text is Java's UTF-8 bytes (a NUL does not end it), the first of duplicate pieces is the one found, and
 * a byte without a character token becomes the first {@code <0xHH>} piece for it (llama2.c assumes token byte + 3).
 */
final class QuadraticEncoder {
    private final Tokenizer t;
    private final Map<String, Integer> lookup = new HashMap<>();
    private final int[] byteToken = new int[256];
    private final String[] vocab;

    QuadraticEncoder(Tokenizer t) {
        this.t = t;
        Arrays.fill(byteToken, -1);
        vocab = new String[t.vocabSize()];
        for (int id = 0; id < t.vocabSize(); id++) {
            String piece = new String(t.piece(id), StandardCharsets.ISO_8859_1);
            vocab[id] = piece;
            lookup.putIfAbsent(piece, id);
            if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
                try {
                    int b = Integer.parseInt(piece.substring(3, 5), 16);
                    if (b >= 0 && byteToken[b] < 0 && piece.charAt(3) != '+' && piece.charAt(3) != '-') {
                        byteToken[b] = id;
                    }
                } catch (NumberFormatException e) {
                    // not a byte piece
                }
            }
        }
    }

    private int strLookup(String s) {
        Integer id = lookup.get(s);
        return id == null ? -1 : id;
    }

    private String vocab(int id) {
        return vocab[id];
    }

    int[] encode(String s, boolean bos, boolean eos) {
        byte[] text = s.getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[text.length + 3];
        int nTokens = 0;
        if (bos) {
            tokens[nTokens++] = t.bos();
        }
        if (text.length != 0) {
            int dummyPrefix = strLookup(" ");
            if (dummyPrefix != -1) { // the Java tokenizer skips the prefix when " " is no piece
                tokens[nTokens++] = dummyPrefix;
            }
        }
        byte[] strBuffer = new byte[8];
        int strLen = 0;
        for (int c = 0; c < text.length; c++) {
            if ((text[c] & 0xC0) != 0x80) {
                strLen = 0;
            }
            strBuffer[strLen++] = text[c];
            if (c + 1 < text.length && (text[c + 1] & 0xC0) == 0x80 && strLen < 4) {
                continue;
            }
            int id = strLookup(new String(strBuffer, 0, strLen, StandardCharsets.ISO_8859_1));
            if (id != -1) {
                tokens[nTokens++] = id;
            } else {
                for (int i = 0; i < strLen; i++) {
                    int b = byteToken[strBuffer[i] & 0xFF];
                    if (b < 0) {
                        throw new IllegalArgumentException("no byte token");
                    }
                    tokens[nTokens++] = b;
                }
            }
            strLen = 0;
        }
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIdx = -1;
            for (int i = 0; i < nTokens - 1; i++) {
                int id = strLookup(vocab(tokens[i]) + vocab(tokens[i + 1]));
                if (id != -1 && t.score(id) > bestScore) {
                    bestScore = t.score(id);
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx == -1) {
                break;
            }
            tokens[bestIdx] = bestId;
            for (int i = bestIdx + 1; i < nTokens - 1; i++) {
                tokens[i] = tokens[i + 1];
            }
            nTokens--;
        }
        if (eos) {
            tokens[nTokens++] = t.eos();
        }
        return Arrays.copyOf(tokens, nTokens);
    }
}
