package io.kvslab.bench.cli;

import io.kvslab.DType;
import picocli.CommandLine;

import java.util.Locale;

/** An element type in any spelling the docs use: f32/fp32/float32, f16/fp16/float16/half, bf16/bfloat16 (any case). */
final class DTypeConverter implements CommandLine.ITypeConverter<DType> {
    static final String ALLOWED = "f32, f16, bf16 (also fp32, float32, fp16, float16, bfloat16; any case)";

    @Override
    public DType convert(String value) {
        return parse(value);
    }

    static DType parse(String value) {
        return switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "f32", "fp32", "float32", "float" -> DType.F32;
            case "f16", "fp16", "float16", "half" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new CommandLine.TypeConversionException("'" + value + "' is not an element type; "
                    + "allowed: " + ALLOWED);
        };
    }
}
