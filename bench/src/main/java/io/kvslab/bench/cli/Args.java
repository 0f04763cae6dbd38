package io.kvslab.bench.cli;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parsed {@code --name value} options and {@code --flag} switches of one command. Every getter validates and
 * throws {@link UsageException} naming the option and what it accepts; {@link #finish()} rejects unknown options.
 */
final class Args {
    private final Map<String, String> values = new HashMap<>();
    private final Set<String> flags = new HashSet<>();
    private final List<String> positional = new ArrayList<>();
    private final Set<String> used = new HashSet<>();

    /** @param flagNames options that take no value (e.g. "json") */
    Args(String[] args, Set<String> flagNames) throws UsageException {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--")) {
                String name = a.substring(2);
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    values.put(name.substring(0, eq), name.substring(eq + 1));
                } else if (flagNames.contains(name)) {
                    flags.add(name);
                } else if (i + 1 < args.length) {
                    values.put(name, args[++i]);
                } else {
                    throw new UsageException("option --" + name + " needs a value");
                }
            } else {
                positional.add(a);
            }
        }
    }

    boolean flag(String name) {
        used.add(name);
        return flags.contains(name);
    }

    String string(String name, String def) {
        used.add(name);
        return values.getOrDefault(name, def);
    }

    String required(String name) throws UsageException {
        used.add(name);
        String v = values.get(name);
        if (v == null) {
            throw new UsageException("option --" + name + " is required");
        }
        return v;
    }

    long longValue(String name, long def, long min, long max) throws UsageException {
        used.add(name);
        String v = values.get(name);
        if (v == null) {
            return def;
        }
        long x;
        try {
            x = parseSize(v);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " must be an integer (suffixes k, m, g allowed), got '" + v + "'");
        }
        if (x < min || x > max) {
            throw new UsageException("--" + name + " must be in [" + min + ", " + max + "], got " + x);
        }
        return x;
    }

    int intValue(String name, int def, int min, int max) throws UsageException {
        return (int) longValue(name, def, min, max);
    }

    double doubleValue(String name, double def, double min, double max) throws UsageException {
        used.add(name);
        String v = values.get(name);
        if (v == null) {
            return def;
        }
        double x;
        try {
            x = Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " must be a number, got '" + v + "'");
        }
        if (!(x >= min && x <= max)) {
            throw new UsageException("--" + name + " must be in [" + min + ", " + max + "], got " + v);
        }
        return x;
    }

    List<String> positional() {
        return positional;
    }

    /** Rejects options nobody asked for (typos). Call after reading every option. */
    void finish() throws UsageException {
        for (String k : values.keySet()) {
            if (!used.contains(k)) {
                throw new UsageException("unknown option --" + k);
            }
        }
        for (String k : flags) {
            if (!used.contains(k)) {
                throw new UsageException("unknown option --" + k);
            }
        }
    }

    /** "4096", "32k", "1m", "2g" (binary multiples). */
    static long parseSize(String v) {
        String s = v.trim().toLowerCase();
        long mul = 1;
        if (s.endsWith("k")) {
            mul = 1L << 10;
        } else if (s.endsWith("m")) {
            mul = 1L << 20;
        } else if (s.endsWith("g")) {
            mul = 1L << 30;
        }
        if (mul != 1) {
            s = s.substring(0, s.length() - 1);
        }
        return Math.multiplyExact(Long.parseLong(s), mul);
    }
}
