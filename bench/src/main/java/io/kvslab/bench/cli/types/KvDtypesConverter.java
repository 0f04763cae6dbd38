package io.kvslab.bench.cli.types;

import io.kvslab.DType;
import io.kvslab.bench.model.KvDtypes;
import picocli.CommandLine;

import java.util.Locale;

/**
 * The stored types of K and V rows in every option that sets a store's element type ({@code generate --kv-dtype},
 * {@code eval fidelity --kv-dtype}, {@code footprint --dtypes}, {@code stress long|churn --dtype}, {@code demo
 * --dtype}): one type for both ({@code q8_0}) or {@code K/V} ({@code q8_0/q4_0}: K q8_0, V q4_0). The older
 * {@code k=q8_0,v=q4_0} spelling still works where the option takes a single value (a list option splits it at the
 * comma). Public because {@code serve --kv-dtype} (package {@code bench.serve}) uses it too.
 */
public final class KvDtypesConverter implements CommandLine.ITypeConverter<KvDtypes> {
    public static final String ALLOWED = "a type for both K and V (" + DTypeConverter.ALLOWED + "), or K/V with a type "
            + "for each (e.g. q8_0/q4_0: K q8_0, V q4_0)";

    /** Used by picocli through the option's {@code converter}. */
    public KvDtypesConverter() {}

    @Override
    public KvDtypes convert(String value) {
        return parse(value);
    }

    public static KvDtypes parse(String value) {
        String s = value.trim();
        if (s.contains("/")) {
            String[] kv = s.split("/", -1);
            if (kv.length != 2) {
                throw new CommandLine.TypeConversionException("'" + value + "' is not a K/V type pair: one '/' "
                        + "between the K and the V type; allowed: " + ALLOWED);
            }
            return new KvDtypes(side(value, kv[0]), side(value, kv[1]));
        }
        if (!s.contains("=")) {
            return KvDtypes.both(side(value, s));
        }
        DType k = null;
        DType v = null;
        for (String part : s.split(",", -1)) {
            int eq = part.indexOf('=');
            String side = eq < 0 ? "" : part.substring(0, eq).trim().toLowerCase(Locale.ROOT);
            String type = eq < 0 ? "" : part.substring(eq + 1);
            if (side.equals("k") && k == null) {
                k = side(value, type);
            } else if (side.equals("v") && v == null) {
                v = side(value, type);
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

    /** One side's type; an unknown one is reported with the whole value and every allowed form. */
    private static DType side(String whole, String type) {
        try {
            return DTypeConverter.parse(type);
        } catch (CommandLine.TypeConversionException e) {
            throw new CommandLine.TypeConversionException("'" + (type.isBlank() ? whole : type) + "'"
                    + (type.isBlank() || type.equals(whole) ? "" : " in '" + whole + "'")
                    + " is not an element type; allowed: " + ALLOWED);
        }
    }
}
