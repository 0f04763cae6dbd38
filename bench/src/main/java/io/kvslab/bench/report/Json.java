package io.kvslab.bench.report;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The bench module's JSON, on its one JSON library (Jackson, which {@code serve} uses for untrusted HTTP bodies):
 * the report writers and readers here, the HTTP server through its own mappers of the same library.
 *
 * <p>Writing: {@link #object()} builds an ordered object of strings, numbers, booleans, lists and nested objects,
 * printed indented by {@link #toString()} (doubles to 6 significant digits, non-finite numbers as null); reports
 * written by hand use {@link #quote}. Reading: {@link #parse} turns objects into {@code LinkedHashMap<String,
 * Object>}, arrays into {@code List<Object>}, integral numbers into {@code Long} (or {@code BigInteger} beyond it),
 * others into {@code Double}, and {@code true}/{@code false}/{@code null} into themselves; duplicate keys, trailing
 * content and Jackson's default limits (nesting depth, number and string length) are refused with an
 * {@link IllegalArgumentException}.
 */
public final class Json {
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.USE_LONG_FOR_INTS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();
    private static final ObjectWriter PRETTY = MAPPER.writer(new DefaultPrettyPrinter().withSeparators(
            Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER)));

    private final Map<String, Object> fields = new LinkedHashMap<>();

    private Json() {}

    public static Json object() {
        return new Json();
    }

    public Json put(String key, Object value) {
        fields.put(key, value);
        return this;
    }

    @Override
    public String toString() {
        try {
            return PRETTY.writeValueAsString(node(this));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode node(Object v) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        return switch (v) {
            case null -> f.nullNode();
            case Json j -> {
                ObjectNode o = f.objectNode();
                j.fields.forEach((k, x) -> o.set(k, node(x)));
                yield o;
            }
            case List<?> list -> {
                ArrayNode a = f.arrayNode();
                list.forEach(x -> a.add(node(x)));
                yield a;
            }
            case Double d -> Double.isFinite(d)
                    ? f.numberNode(Double.parseDouble(String.format(Locale.ROOT, "%.6g", d))) : f.nullNode();
            case Float x -> node((double) x);
            case Long x -> f.numberNode(x);
            case Integer x -> f.numberNode(x);
            case Short x -> f.numberNode(x);
            case Byte x -> f.numberNode(x);
            case Number n -> MAPPER.valueToTree(n);
            case Boolean b -> f.booleanNode(b);
            default -> f.textNode(v.toString());
        };
    }

    /** Parses one JSON value; throws {@link IllegalArgumentException} naming where and what is malformed. */
    public static Object parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("malformed JSON: no text (null)");
        }
        try {
            return MAPPER.readValue(text, Object.class);
        } catch (JacksonException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new IllegalArgumentException("malformed JSON" + where + ": " + e.getOriginalMessage());
        }
    }

    /** A JSON string literal for {@code v} (the JSON {@code null} for null), escaped by the library. */
    public static String quote(String v) {
        try {
            return MAPPER.writeValueAsString(v);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
