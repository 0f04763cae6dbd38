package io.kvslab.bench.cli;

import io.kvslab.DType;
import picocli.CommandLine;

import java.util.Locale;

/**
 * The stored types of K and V rows, as {@code --kv-dtype} spells them: one type for both ({@code q8_0}), or each
 * side on its own ({@code k=q8_0,v=q4_0}, as llama.cpp's {@code --cache-type-k q8_0 --cache-type-v q4_0}).
 *
 * @param key    type of stored K rows
 * @param value  type of stored V rows
 */
public record KvDtypes(DType key, DType value) {
    static final String ALLOWED = "a type for both K and V (" + DTypeConverter.ALLOWED + "), or k=TYPE,v=TYPE "
            + "for each side (e.g. k=q8_0,v=q4_0)";

    /** The same type on both sides. */
    static KvDtypes both(DType dtype) {
        return new KvDtypes(dtype, dtype);
    }

    static KvDtypes parse(String value) {
        String s = value.trim();
        if (!s.contains("=")) {
            return both(DTypeConverter.parse(s));
        }
        DType k = null;
        DType v = null;
        for (String part : s.split(",", -1)) {
            int eq = part.indexOf('=');
            String side = eq < 0 ? "" : part.substring(0, eq).trim().toLowerCase(Locale.ROOT);
            String type = eq < 0 ? "" : part.substring(eq + 1);
            if (side.equals("k") && k == null) {
                k = DTypeConverter.parse(type);
            } else if (side.equals("v") && v == null) {
                v = DTypeConverter.parse(type);
            } else {
                throw new CommandLine.TypeConversionException("'" + value + "' is not a K/V type pair: '" + part
                        + "' must be k=TYPE or v=TYPE, each once; allowed: " + ALLOWED);
            }
        }
        if (k == null || v == null) {
            throw new CommandLine.TypeConversionException("'" + value + "' names " + (k == null ? "no K" : "no V")
                    + " type; allowed: " + ALLOWED);
        }
        return new KvDtypes(k, v);
    }

    /** {@code q8_0} when both sides agree, else {@code k=q8_0,v=q4_0}. */
    public String label() {
        String k = key.name().toLowerCase(Locale.ROOT);
        return key == value ? k : "k=" + k + ",v=" + value.name().toLowerCase(Locale.ROOT);
    }

    /** The picocli converter of {@code --kv-dtype}. */
    public static final class Converter implements CommandLine.ITypeConverter<KvDtypes> {
        @Override
        public KvDtypes convert(String value) {
            return parse(value);
        }
    }
}
