package io.kvslab.bench.fuzz;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Structure-aware mutations of a parsed seed. Most mutations target the fields a reader sizes allocations and reads
 * by: counts, sizes, dimensions and offsets get boundary values (0, 1, -1, the largest int and long, the file's length
 * plus or minus a little, values of other fields), groups of fields a reader multiplies get values whose product
 * overflows 2^31, 2^32 or 2^63, and offsets of distinct objects are made to alias and overlap. The rest are blind byte
 * flips, truncations and extensions, so that what the structure does not describe is still hit.
 */
final class Mutator {
    /** A mutated file and what was done to it (one line, for reports). */
    record Mutant(byte[] bytes, String description) {}

    private static final long[] BOUNDARY = {0, 1, -1, 2, 3, 7, 8, 31, 32, 33, 127, 128, 255, 256, 4095, 4096, 32767,
            32768, 65535, 65536, 65537, 46341, 1L << 20, (1L << 30) - 1, 1L << 30, Integer.MAX_VALUE,
            1L << 31, (1L << 32) - 1, 1L << 32, 1L << 40, 3037000500L, Long.MAX_VALUE, Long.MIN_VALUE,
            Integer.MIN_VALUE, Long.MAX_VALUE / 2 + 1};
    /** Factors whose pairwise products cross 2^31, 2^32 or 2^63. */
    private static final long[] OVERFLOW_FACTORS = {46341, 65535, 65536, 32768, 1 << 20, 1 << 30, Integer.MAX_VALUE,
            3037000500L, 1L << 32, (1L << 16) + 1, 8192, 16384};

    /** NaN, infinities and the largest finite values of F16 / BF16 (2 bytes) and F32 (4 bytes): for VALUE fields. */
    private static final long[] FLOAT16_SPECIALS = {0x7E00, 0x7C00, 0xFC00, 0x7BFF, 0x7FC0, 0x7F80, 0xFF80, 0x7F7F};
    private static final long[] FLOAT32_SPECIALS = {0x7FC00000L, 0x7F800000L, 0xFF800000L, 0x7F7FFFFFL, 0x7FFFFFFFL};

    private Mutator() {}

    static Mutant mutate(Structure s, Random r) {
        byte[] b = s.bytes().clone();
        int pick = r.nextInt(100);
        if (pick < 34) {
            return fieldBoundary(s, b, r, 1);
        } else if (pick < 46) {
            return fieldBoundary(s, b, r, 2 + r.nextInt(3));
        } else if (pick < 60 && !s.products().isEmpty()) {
            return productOverflow(s, b, r);
        } else if (pick < 72 && !s.offsetGroups().isEmpty()) {
            return alias(s, b, r);
        } else if (pick < 90) {
            return flips(s, b, r);
        } else {
            return resize(s, b, r);
        }
    }

    /** A field chosen by kind weight (counts, sizes, dims and offsets first). */
    static Field pickField(Structure s, Random r) {
        List<Field> fields = s.fields();
        int total = 0;
        for (Field f : fields) {
            total += f.kind().weight();
        }
        int x = r.nextInt(total);
        for (Field f : fields) {
            x -= f.kind().weight();
            if (x < 0) {
                return f;
            }
        }
        return fields.get(fields.size() - 1);
    }

    /** A boundary value for {@code f}: fixed boundaries, the file length +- k, relatives of its value, other fields. */
    private static long boundaryValue(Structure s, Field f, byte[] b, Random r) {
        long old = f.read(s.bytes());
        long len = s.bytes().length;
        if (f.kind() == FieldKind.VALUE && (f.width() == 2 || f.width() == 4) && r.nextBoolean()) {
            long[] specials = f.width() == 2 ? FLOAT16_SPECIALS : FLOAT32_SPECIALS;
            return specials[r.nextInt(specials.length)];
        }
        return switch (r.nextInt(8)) {
            case 0, 1, 2 -> BOUNDARY[r.nextInt(BOUNDARY.length)];
            case 3 -> len + r.nextInt(129) - 64;
            case 4 -> old + (r.nextBoolean() ? 1 : -1) * (1 + r.nextInt(4));
            case 5 -> r.nextBoolean() ? old * 2 : old << (8 + r.nextInt(24));
            case 6 -> {
                Field other = pickField(s, r);
                yield other.read(b) + (r.nextBoolean() ? 0 : s.alignment());
            }
            default -> f.maxSigned() - r.nextInt(4);
        };
    }

    private static Mutant fieldBoundary(Structure s, byte[] b, Random r, int n) {
        StringBuilder d = new StringBuilder(n == 1 ? "field" : "fields");
        for (int i = 0; i < n; i++) {
            Field f = pickField(s, r);
            long v = boundaryValue(s, f, b, r);
            f.write(b, v);
            d.append(i == 0 ? " " : ", ").append(f.name()).append('=').append(f.read(b));
        }
        return new Mutant(b, d.toString());
    }

    private static Mutant productOverflow(Structure s, byte[] b, Random r) {
        List<Field> group = s.products().get(r.nextInt(s.products().size()));
        List<Field> chosen = new ArrayList<>(group);
        java.util.Collections.shuffle(chosen, r);
        int k = Math.min(chosen.size(), 1 + r.nextInt(Math.max(1, chosen.size())));
        chosen = chosen.subList(0, Math.max(k, Math.min(2, chosen.size())));
        StringBuilder d = new StringBuilder("product overflow");
        long target = switch (r.nextInt(3)) {
            case 0 -> 1L << 31;
            case 1 -> 1L << 32;
            default -> Long.MAX_VALUE;
        };
        for (int i = 0; i < chosen.size(); i++) {
            Field f = chosen.get(i);
            long v;
            if (r.nextBoolean() || i < chosen.size() - 1) {
                v = OVERFLOW_FACTORS[r.nextInt(OVERFLOW_FACTORS.length)];
            } else {
                // the last factor: just enough for the whole group's product to reach the target
                long others = 1;
                for (Field g : group) {
                    if (g != f) {
                        long x = Math.max(1, Math.abs(g.read(b)));
                        others = x > Long.MAX_VALUE / others ? Long.MAX_VALUE : others * x;
                    }
                }
                v = target / others + 1;
            }
            v = Math.min(v, f.maxSigned());
            f.write(b, v);
            d.append(i == 0 ? " " : ", ").append(f.name()).append('=').append(f.read(b));
        }
        return new Mutant(b, d.toString());
    }

    private static Mutant alias(Structure s, byte[] b, Random r) {
        List<Field> group = s.offsetGroups().get(r.nextInt(s.offsetGroups().size()));
        int mode = r.nextInt(4);
        if (mode == 0 || group.size() < 2) {
            // every offset of the group the same (the audit's GGUF: all tensors at 0)
            long v = r.nextBoolean() ? 0 : group.get(r.nextInt(group.size())).read(b);
            for (Field f : group) {
                f.write(b, v);
            }
            return new Mutant(b, "alias all " + group.size() + " offsets of " + group.get(0).name() + "... to " + v);
        }
        Field a = group.get(r.nextInt(group.size()));
        Field c = group.get(r.nextInt(group.size()));
        long v = switch (mode) {
            case 1 -> c.read(b);                                            // duplicate another's offset
            case 2 -> c.read(b) + s.alignment() * (1 + r.nextInt(4));       // start inside another (overlap)
            default -> Math.max(0, c.read(b) - s.alignment());              // end inside another
        };
        a.write(b, v);
        return new Mutant(b, "offset " + a.name() + "=" + v + " (from " + c.name() + ")");
    }

    private static Mutant flips(Structure s, byte[] b, Random r) {
        int n = 1 + r.nextInt(8);
        StringBuilder d = new StringBuilder("flips");
        for (int i = 0; i < n; i++) {
            int pos;
            if (r.nextInt(10) < 7 && !s.fields().isEmpty()) {
                Field f = pickField(s, r);
                pos = f.offset() + r.nextInt(f.width());
            } else {
                pos = r.nextInt(b.length);
            }
            if (pos >= b.length) {
                continue;
            }
            if (r.nextBoolean()) {
                b[pos] ^= (byte) (1 << r.nextInt(8));
            } else {
                b[pos] = (byte) r.nextInt(256);
            }
            d.append(' ').append(pos);
        }
        return new Mutant(b, d.toString());
    }

    private static Mutant resize(Structure s, byte[] b, Random r) {
        if (r.nextInt(3) > 0) {
            int cut;
            if (r.nextBoolean() && !s.fields().isEmpty()) {
                Field f = s.fields().get(r.nextInt(s.fields().size()));
                cut = Math.max(0, Math.min(b.length - 1, f.offset() + r.nextInt(f.width() + 2) - 1));
            } else {
                cut = r.nextInt(b.length);
            }
            return new Mutant(Arrays.copyOf(b, cut), "truncate to " + cut);
        }
        int extra = 1 + r.nextInt(r.nextBoolean() ? 64 : 4096);
        byte[] x = Arrays.copyOf(b, b.length + extra);
        if (r.nextBoolean()) {
            for (int i = b.length; i < x.length; i++) {
                x[i] = (byte) r.nextInt(256);
            }
        }
        return new Mutant(x, "extend by " + extra);
    }
}
