package io.kvslab.bench.cli;

import picocli.CommandLine;

import java.util.Locale;

/** A count or byte size with optional binary suffix: 4096, 32k, 1m, 2g (k = 1024). */
final class SizeConverter implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
        return parse(value);
    }

    static long parse(String value) {
        String s = value.trim().toLowerCase(Locale.ROOT);
        int shift = s.endsWith("k") ? 10 : s.endsWith("m") ? 20 : s.endsWith("g") ? 30 : 0;
        if (shift > 0) {
            s = s.substring(0, s.length() - 1);
        }
        try {
            return Math.multiplyExact(Long.parseLong(s), 1L << shift);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not a size (an integer with an optional "
                    + "k, m or g suffix: 4096, 32k, 1m)");
        }
    }

    /** The same for an int-valued option. */
    static final class Int implements CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            long v = parse(value);
            if (v > Integer.MAX_VALUE || v < Integer.MIN_VALUE) {
                throw new CommandLine.TypeConversionException("'" + value + "' is too large (at most "
                        + Integer.MAX_VALUE + ")");
            }
            return (int) v;
        }
    }
}
