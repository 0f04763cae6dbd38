package io.kvslab.bench.model;

import io.kvslab.DType;
import io.kvslab.KvLayout;

import java.util.Locale;
import java.util.Objects;

/**
 * The stored types of a store's K and V rows: one type for both ({@code q8_0}) or each side its own ({@code q8_0/q4_0}:
 * K q8_0, V q4_0, as llama.cpp's {@code --cache-type-k q8_0 --cache-type-v q4_0}). The CLI parses it
 * ({@code cli.types.KvDtypesConverter}); eval, footprint and stress build their stores from it.
 *
 * @param key   type of stored K rows
 * @param value type of stored V rows
 */
public record KvDtypes(DType key, DType value) {
    /** f32 on both sides: the reference store of the evals. */
    public static final KvDtypes F32 = both(DType.F32);

    public KvDtypes {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
    }

    /** The same type on both sides. */
    public static KvDtypes both(DType dtype) {
        return new KvDtypes(dtype, dtype);
    }

    /** True when K and V rows have the same type. */
    public boolean uniform() {
        return key == value;
    }

    /** {@code q8_0} when both sides agree, else {@code K/V} such as {@code q8_0/q4_0}. */
    public String label() {
        String k = key.name().toLowerCase(Locale.ROOT);
        return uniform() ? k : k + "/" + value.name().toLowerCase(Locale.ROOT);
    }

    /** {@code layout} with these K and V types. */
    public KvLayout applyTo(KvLayout layout) {
        return layout.withDtypes(key, value);
    }

    @Override
    public String toString() {
        return label();
    }
}
