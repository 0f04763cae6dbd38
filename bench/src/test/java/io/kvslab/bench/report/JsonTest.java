package io.kvslab.bench.report;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bench's JSON on Jackson: the value types callers cast to, round trips, and input an attacker could send. */
class JsonTest {
    @Test
    void parsesIntoMapsListsLongsAndDoubles() {
        Map<?, ?> m = (Map<?, ?>) Json.parse("{\"a\": 1, \"b\": [2.5, true, null, \"x\\u00e9\\n\"], \"c\": {}}");
        assertEquals(1L, m.get("a"));
        List<?> b = (List<?>) m.get("b");
        assertEquals(2.5, b.get(0));
        assertEquals(Boolean.TRUE, b.get(1));
        assertNull(b.get(2));
        assertEquals("x\u00e9\n", b.get(3));
        assertEquals(List.of("a", "b", "c"), List.copyOf(m.keySet()), "key order kept");
    }

    @Test
    void writesWhatItReadsBack() {
        String text = Json.object().put("name", "q\"uote\\ \u0001").put("n", 3).put("x", 1.0 / 3)
                .put("nan", Double.NaN).put("list", List.of(1, Json.object().put("ok", false))).toString();
        assertTrue(text.contains("\"n\": 3"), text);
        Map<?, ?> m = (Map<?, ?>) Json.parse(text);
        assertEquals("q\"uote\\ \u0001", m.get("name"));
        assertEquals(3L, m.get("n"));
        assertEquals(0.333333, (Double) m.get("x"), 0.0);
        assertNull(m.get("nan"));
        assertEquals("q\"uote\\ \u0001", Json.parse(Json.quote("q\"uote\\ \u0001")));
        assertEquals("null", Json.quote(null));
    }

    @Test
    void malformedAndHostileInputIsRefusedWithATypedError() {
        for (String bad : new String[]{"", "{", "{\"a\": 1,}", "[1 2]", "{\"a\": 1} x", "+1", "01", "NaN",
                "{\"a\": 1, \"a\": 2}", "\"unterminated", "{'a': 1}", "[" .repeat(100_000)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(bad),
                    bad.length() > 20 ? bad.substring(0, 20) + "..." : bad);
            assertTrue(e.getMessage().startsWith("malformed JSON"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Json.parse(null));
    }
}
