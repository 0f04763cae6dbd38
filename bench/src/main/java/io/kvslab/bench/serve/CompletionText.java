package io.kvslab.bench.serve;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The text of one completion as its tokens arrive: token pieces are bytes, so a character may span two tokens; a stop
 * string may span several. {@link #add} returns only text that is final: complete UTF-8 characters that cannot be the
 * start of a stop string any more. Once a stop string appears, the text ends just before it.
 */
final class CompletionText {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final List<String> stops;
    private final int holdBack;
    private final StringBuilder released = new StringBuilder();
    /** The decoded text of {@link #bytes} but for {@link #tail} (the bytes of a character not complete yet). */
    private final StringBuilder decoded = new StringBuilder();
    private byte[] tail = new byte[0];
    private boolean stopped;

    CompletionText(List<String> stops) {
        this.stops = stops;
        int longest = 0;
        for (String s : stops) {
            longest = Math.max(longest, s.length());
        }
        this.holdBack = Math.max(0, longest - 1);
    }

    /** Appends a printable piece; returns the text now final (may be empty). */
    String add(byte[] piece) {
        if (stopped) {
            throw new IllegalStateException("the completion already ended at a stop string");
        }
        bytes.writeBytes(piece);
        StringBuilder all = decodeComplete(piece);
        int from = released.length();
        int cut = -1;
        for (String s : stops) {
            int at = all.indexOf(s, from);
            if (at >= 0 && (cut < 0 || at < cut)) {
                cut = at;
            }
        }
        int end;
        if (cut >= 0) {
            stopped = true;
            end = cut;
        } else {
            end = Math.max(from, all.length() - holdBack);
        }
        String out = all.substring(from, end);
        released.append(out);
        return out;
    }

    /** True once a stop string appeared: the completion is over. */
    boolean stopped() {
        return stopped;
    }

    /** At the end of the completion: the text still held back (a partial stop string, a truncated character). */
    String finish() {
        if (stopped) {
            return "";
        }
        String all = bytes.toString(StandardCharsets.UTF_8);
        String out = all.length() > released.length() ? all.substring(released.length()) : "";
        released.append(out);
        return out;
    }

    /** Everything released so far. */
    String text() {
        return released.toString();
    }

    /**
     * Everything up to the last complete UTF-8 character, decoded. Only the bytes added since the last call are
     * decoded and appended (the text before a character boundary never changes), so a completion of n tokens costs
     * O(n), not O(n^2).
     */
    private StringBuilder decodeComplete(byte[] piece) {
        byte[] b = tail.length == 0 ? piece : concat(tail, piece);
        int end = completeEnd(b);
        decoded.append(new String(b, 0, end, StandardCharsets.UTF_8));
        tail = java.util.Arrays.copyOfRange(b, end, b.length);
        return decoded;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Where the last complete UTF-8 character of {@code b} ends. */
    private static int completeEnd(byte[] b) {
        int end = b.length;
        // step back over a trailing incomplete multi-byte sequence (at most 3 bytes)
        for (int back = 1; back <= Math.min(3, b.length); back++) {
            int lead = b[b.length - back] & 0xFF;
            if ((lead & 0xC0) == 0x80) {
                continue;
            }
            int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (need > back) {
                end = b.length - back;
            }
            break;
        }
        return end;
    }
}
