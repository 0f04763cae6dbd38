package io.kvslab.bench.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A SentencePiece-style BPE vocabulary encoded and decoded exactly as llama2.c's {@code run.c} does: a prompt gets
 * BOS, a dummy leading space, one token per UTF-8 character (or its bytes as {@code <0xHH>} tokens), then the
 * adjacent pair whose merged piece has the highest score is merged until no merge applies.
 *
 * <p>Pieces are byte strings (spaces as {@code ' '}, not SentencePiece's U+2581). Lookups key them as ISO-8859-1
 * strings, which map bytes one to one to chars, so any byte sequence is a valid key.
 */
public final class Tokenizer {
    private final byte[][] pieces;
    private final float[] scores;
    private final int bos;
    private final int eos;
    private final Map<String, Integer> ids;
    private final int[] byteTokens;   // token for raw byte b, or -1
    private final int[] tokenByte;    // raw byte a token stands for (piece <0xHH>), or -1
    private final int space;          // token of " " (the dummy prefix), or -1
    private final int maxPieceBytes;  // the longest piece's length in bytes, at least 1

    Tokenizer(byte[][] pieces, float[] scores, int bos, int eos) {
        if (pieces.length != scores.length) {
            throw new IllegalArgumentException(pieces.length + " pieces but " + scores.length + " scores");
        }
        if (bos < 0 || bos >= pieces.length || eos < 0 || eos >= pieces.length) {
            throw new IllegalArgumentException("BOS " + bos + " / EOS " + eos + " outside the vocabulary of " + pieces.length);
        }
        this.pieces = pieces;
        this.scores = scores;
        this.bos = bos;
        this.eos = eos;
        this.ids = new HashMap<>(pieces.length * 2);
        this.byteTokens = new int[256];
        this.tokenByte = new int[pieces.length];
        java.util.Arrays.fill(byteTokens, -1);
        int longest = 1;
        for (int id = 0; id < pieces.length; id++) {
            longest = Math.max(longest, pieces[id].length);
            // the first of duplicate pieces wins, deterministically
            ids.putIfAbsent(key(pieces[id]), id);
            int b = rawByte(pieces[id]);
            tokenByte[id] = b;
            if (b >= 0 && byteTokens[b] < 0) {
                byteTokens[b] = id;
            }
        }
        this.space = ids.getOrDefault(" ", -1);
        this.maxPieceBytes = longest;
    }

    private static String key(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    /** The byte a piece {@code <0xHH>} stands for, or -1. */
    private static int rawByte(byte[] p) {
        if (p.length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') {
            return -1;
        }
        int hi = Character.digit(p[3], 16);
        int lo = Character.digit(p[4], 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    public int vocabSize() {
        return pieces.length;
    }

    /** Beginning-of-sequence token (1 for llama2.c models); generation stops when the model emits it. */
    public int bos() {
        return bos;
    }

    public int eos() {
        return eos;
    }

    /** The raw bytes of a token's piece as stored in the vocabulary. */
    public byte[] piece(int token) {
        checkToken(token);
        return pieces[token].clone();
    }

    public float score(int token) {
        checkToken(token);
        return scores[token];
    }

    private void checkToken(int token) {
        if (token < 0 || token >= pieces.length) {
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, " + pieces.length + ")");
        }
    }

    /** The longest piece's length in bytes, at least 1. */
    public int maxPieceBytes() {
        return maxPieceBytes;
    }

    /**
     * The most UTF-8 bytes a text that {@link #encode encodes} to at most {@code tokens} tokens (BOS and EOS not
     * counted) can have: {@code tokens} x {@link #maxPieceBytes()}. A text longer than that cannot fit, which callers
     * can tell from its {@link #utf8Length length} without encoding it. Sound because no token covers more bytes of the
     * text than its piece has: a character's token is the character's bytes, a byte token ({@code <0xHH>}, 6 bytes)
     * covers one, the dummy-prefix space none, and a merged token covers what its two parts covered, its piece being
     * their concatenation.
     */
    public long maxTextBytes(int tokens) {
        return Math.max(0, tokens) * (long) maxPieceBytes;
    }

    /**
     * Null if {@code text} may fit in {@code tokens} tokens (BOS included) judged by its length alone, else why it
     * cannot: more UTF-8 bytes than {@link #maxTextBytes} allows. Costs one pass over the chars, not an encoding.
     */
    public String lengthProblem(CharSequence text, int tokens) {
        long bytes = utf8Length(text);
        long most = maxTextBytes(tokens);
        return bytes <= most ? null : "the prompt of " + bytes + " bytes (UTF-8) cannot fit: the context length is " + tokens
                + " tokens (BOS included) of at most " + maxPieceBytes + " bytes each, so a prompt has at most " + most
                + " bytes";
    }

    /**
     * The length of {@code text.getBytes(UTF_8)}, what {@link #encode} tokenizes, without allocating it (an unpaired
     * surrogate becomes the one byte '?', as there).
     */
    public static long utf8Length(CharSequence text) {
        long n = 0;
        int len = text.length();
        for (int i = 0; i < len; i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                n += 1;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < len && Character.isLowSurrogate(text.charAt(i + 1))) {
                n += 4;
                i++;
            } else if (Character.isSurrogate(c)) {
                n += 1;
            } else {
                n += 3;
            }
        }
        return n;
    }

    /**
     * Encodes text like llama2.c's {@code encode}: optional BOS, a dummy space token if the text is not empty, one token
     * per UTF-8 character (byte tokens where the character has none), then greedy highest-score pair merges (the
     * leftmost pair wins a tie), then optional EOS.
     */
    public int[] encode(String text, boolean addBos, boolean addEos) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[utf8.length + 3];
        int n = 0;
        if (addBos) {
            tokens[n++] = bos;
        }
        if (utf8.length > 0 && space >= 0) {
            tokens[n++] = space;
        }
        int i = 0;
        while (i < utf8.length) {
            // one code point: a lead byte plus up to three continuation bytes (llama2.c caps the group at 4 bytes)
            int end = i + 1;
            while (end < utf8.length && (utf8[end] & 0xC0) == 0x80 && end - i < 4) {
                end++;
            }
            Integer id = ids.get(new String(utf8, i, end - i, StandardCharsets.ISO_8859_1));
            if (id != null) {
                tokens[n++] = id;
            } else {
                for (int b = i; b < end; b++) {
                    int t = byteTokens[utf8[b] & 0xFF];
                    if (t < 0) {
                        throw new IllegalArgumentException("text byte 0x" + Integer.toHexString(utf8[b] & 0xFF)
                                + " has no token and the vocabulary has no <0xHH> byte piece for it");
                    }
                    tokens[n++] = t;
                }
            }
            i = end;
        }
        n = BpeMerge.merge(tokens, n, scores, this::mergeOf);
        if (addEos) {
            tokens[n++] = eos;
        }
        return java.util.Arrays.copyOf(tokens, n);
    }

    /**
     * The token llama2.c merges adjacent tokens {@code a}, {@code b} into: the piece their concatenation spells, if
     * its score counts (llama2.c starts its search for the best score at -1e10, so a pair scoring no more than that
     * never merges), else -1.
     */
    private int mergeOf(int a, int b) {
        byte[] pa = pieces[a];
        byte[] pb = pieces[b];
        byte[] both = java.util.Arrays.copyOf(pa, pa.length + pb.length);
        System.arraycopy(pb, 0, both, pa.length, pb.length);
        Integer found = ids.get(key(both));
        return found != null && scores[found] > -1e10f ? found : -1;
    }

    /**
     * The bytes llama2.c's {@code decode(prev, token)} yields: the piece, without its leading space right after BOS,
     * and a {@code <0xHH>} piece as its single raw byte.
     */
    public byte[] decode(int previous, int token) {
        checkToken(token);
        if (tokenByte[token] >= 0) {
            return new byte[]{(byte) tokenByte[token]};
        }
        byte[] p = pieces[token];
        if (previous == bos && p.length > 0 && p[0] == ' ') {
            return java.util.Arrays.copyOfRange(p, 1, p.length);
        }
        return p.clone();
    }

    /**
     * Lossless decoding: every token's {@link #decode(int, int) piece} (raw bytes included, nothing filtered) read as
     * UTF-8, the first token decoded as if it followed {@code previous}.
     */
    public String decode(int previous, int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int prev = previous;
        for (int t : tokens) {
            out.writeBytes(decode(prev, t));
            prev = t;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /**
     * The text llama2.c prints for a token sequence: each token decoded after its predecessor ({@code previous} for the
     * first), pieces that are a single unprintable byte skipped (its {@code safe_printf}), the bytes read as UTF-8.
     */
    public String render(int previous, int[] tokens) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int prev = previous;
        for (int t : tokens) {
            byte[] p = decode(prev, t);
            if (printable(p)) {
                out.writeBytes(p);
            }
            prev = t;
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** llama2.c's safe_printf filter: an empty piece, or one byte that is neither printable ASCII nor whitespace, is dropped. */
    public static boolean printable(byte[] piece) {
        if (piece.length == 0) {
            return false;
        }
        if (piece.length == 1) {
            int b = piece[0] & 0xFF;
            return (b >= 0x20 && b <= 0x7E) || b == ' ' || (b >= '\t' && b <= '\r');
        }
        return true;
    }
}
