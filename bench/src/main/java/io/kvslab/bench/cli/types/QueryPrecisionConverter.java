package io.kvslab.bench.cli.types;

import io.kvslab.Attention;
import picocli.CommandLine;

import java.util.Locale;

/**
 * A decode attention precision ({@link Attention.QueryPrecision}): exact, q8_0 (integer-query scores) or int8
 * (integer-query scores and integer value sums), any case.
 */
public final class QueryPrecisionConverter implements CommandLine.ITypeConverter<Attention.QueryPrecision> {
    public static final String ALLOWED = "exact, q8_0 (integer-query scores of q8_0/q4_0 keys), int8 (q8_0's scores "
            + "and integer value sums of q8_0/q4_0 values); any case";

    @Override
    public Attention.QueryPrecision convert(String value) {
        return parse(value);
    }

    public static Attention.QueryPrecision parse(String value) {
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "exact" -> Attention.QueryPrecision.EXACT;
            case "q8_0" -> Attention.QueryPrecision.Q8_0;
            case "int8" -> Attention.QueryPrecision.INT8;
            default -> throw new CommandLine.TypeConversionException("'" + value + "' is not a query precision; "
                    + "allowed: " + ALLOWED);
        };
    }
}
