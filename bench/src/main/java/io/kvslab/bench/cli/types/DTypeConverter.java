package io.kvslab.bench.cli.types;

import io.kvslab.DType;
import picocli.CommandLine;

import java.util.Locale;

/**
 * An element type in any spelling the docs use: f32/fp32/float32, f16/fp16/float16/half, bf16/bfloat16, and the
 * ggml quantisations q8_0/q8 and q4_0/q4 (any case).
 */
public final class DTypeConverter implements CommandLine.ITypeConverter<DType> {
    public static final String ALLOWED = "f32, f16, bf16, q8_0, q4_0 (also fp32, float32, fp16, float16, bfloat16, q8, q4; "
            + "any case)";

    @Override
    public DType convert(String value) {
        return parse(value);
    }

    public static DType parse(String value) {
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "f32", "fp32", "float32", "float" -> DType.F32;
            case "f16", "fp16", "float16", "half" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            case "q8_0", "q8" -> DType.Q8_0;
            case "q4_0", "q4" -> DType.Q4_0;
            default -> throw new CommandLine.TypeConversionException("'" + value + "' is not an element type; "
                    + "allowed: " + ALLOWED);
        };
    }
}
