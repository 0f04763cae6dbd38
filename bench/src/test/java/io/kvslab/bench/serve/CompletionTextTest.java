package io.kvslab.bench.serve;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompletionTextTest {
    private static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void withoutStopsEverythingIsReleasedAtOnce() {
        CompletionText t = new CompletionText(List.of());
        assertEquals("Once", t.add(b("Once")));
        assertEquals(" upon", t.add(b(" upon")));
        assertEquals("", t.finish());
        assertEquals("Once upon", t.text());
    }

    @Test
    void aCharacterSplitAcrossTokensWaitsForItsLastByte() {
        byte[] e = b("é"); // C3 A9
        CompletionText t = new CompletionText(List.of());
        assertEquals("caf", t.add(b("caf")));
        assertEquals("", t.add(new byte[]{e[0]}));
        assertEquals("é!", t.add(new byte[]{e[1], '!'}));
    }

    @Test
    void aStopStringSpanningTokensCutsTheTextBeforeIt() {
        CompletionText t = new CompletionText(List.of("The end", "xyz"));
        String first = t.add(b("Lily played. T"));
        assertEquals("Lily pla", first, "the last 6 characters could start a stop string");
        String got = first + t.add(b("he")) + t.add(b(" end. More"));
        assertTrue(t.stopped());
        assertEquals("Lily played. ", got);
        assertEquals("", t.finish());
        assertEquals("Lily played. ", t.text());
    }

    @Test
    void aPartialStopAtTheEndIsReleasedByFinish() {
        CompletionText t = new CompletionText(List.of("stop"));
        assertEquals("ab", t.add(b("absto")));
        assertFalse(t.stopped());
        assertEquals("sto", t.finish());
        assertEquals("absto", t.text());
    }
}
