package io.kvslab.bench.footprint;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A minimal JSON writer for the reports of the footprint and stress commands: ordered objects of strings,
 * numbers, booleans, lists and nested objects. Non-finite numbers are written as null.
 */
public final class Json {
    private final Map<String, Object> fields = new LinkedHashMap<>();

    public static Json object() {
        return new Json();
    }

    public Json put(String key, Object value) {
        fields.put(key, value);
        return this;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        write(sb, this, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, int indent) {
        switch (v) {
            case null -> sb.append("null");
            case Json j -> {
                sb.append("{");
                boolean first = true;
                for (Map.Entry<String, Object> e : j.fields.entrySet()) {
                    sb.append(first ? "\n" : ",\n");
                    first = false;
                    pad(sb, indent + 1);
                    quote(sb, e.getKey());
                    sb.append(": ");
                    write(sb, e.getValue(), indent + 1);
                }
                if (!first) {
                    sb.append("\n");
                    pad(sb, indent);
                }
                sb.append("}");
            }
            case List<?> list -> {
                sb.append("[");
                for (int i = 0; i < list.size(); i++) {
                    sb.append(i == 0 ? "\n" : ",\n");
                    pad(sb, indent + 1);
                    write(sb, list.get(i), indent + 1);
                }
                if (!list.isEmpty()) {
                    sb.append("\n");
                    pad(sb, indent);
                }
                sb.append("]");
            }
            case Double d -> sb.append(Double.isFinite(d) ? String.format(Locale.ROOT, "%.6g", d) : "null");
            case Float f -> write(sb, (double) f, indent);
            case Number n -> sb.append(n);
            case Boolean b -> sb.append(b);
            default -> quote(sb, v.toString());
        }
    }

    private static void pad(StringBuilder sb, int indent) {
        sb.append("  ".repeat(indent));
    }

    private static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
