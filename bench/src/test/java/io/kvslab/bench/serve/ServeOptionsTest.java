package io.kvslab.bench.serve;

import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `kvslab serve` option handling: sizes, and refusals before anything is loaded or bound. */
class ServeOptionsTest {
    @Test
    void sizes() {
        assertEquals(1048576L, ByteSize.parse("1048576"));
        assertEquals(256L << 10, ByteSize.parse("256k"));
        assertEquals(64L << 20, ByteSize.parse("64M"));
        assertEquals(2L << 30, ByteSize.parse("2GiB"));
        assertEquals(512L, ByteSize.parse("512b"));
        for (String bad : new String[]{"", "k", "-1", "0", "1.5m", "12x", "9223372036854775807k"}) {
            assertThrows(CommandLine.TypeConversionException.class, () -> ByteSize.parse(bad), bad);
        }
    }

    private static int run(StringWriter err, String... args) {
        CommandLine cl = new CommandLine(new ServeCommand());
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(args);
    }

    @Test
    void badOptionsAreUsageErrors() {
        String model = SharedModels.binFile().toString();
        StringWriter err = new StringWriter();
        assertEquals(2, run(err, "--model", model, "--kv-limit", "lots"));
        assertTrue(err.toString().contains("is not a size"), err.toString());
        assertEquals(2, run(new StringWriter(), "--tokenizer", "x"), "--model is required");
        assertEquals(2, run(new StringWriter(), "--model", model, "--matmul", "cuda"));
        assertEquals(2, run(new StringWriter(), "--model", model, "--max-batch", "0"));
        assertEquals(2, run(new StringWriter(), "--model", model, "--decode-threads", "0"));
        assertEquals(2, run(new StringWriter(), "--model", model, "--decode-threads", "65"));
        assertEquals(2, run(new StringWriter(), "--model", model, "--stream-interval", "0"));
        StringWriter kv = new StringWriter();
        assertEquals(2, run(kv, "--model", model, "--kv-dtype", "q9_0"));
        assertTrue(kv.toString().contains("q8_0"), "the error lists the allowed types: " + kv);
        assertEquals(2, run(new StringWriter(), "--model", model, "--kv-dtype", "k=q8_0"), "a pair needs both sides");
        for (String bad : new String[] {"compress:snapkv:0.5", "compress:streamingllm", "evict", "recompute,recompute",
                "compress:knorm:2.5"}) {
            assertEquals(2, run(new StringWriter(), "--model", model, "--pressure", bad), bad);
        }
    }

    @Test
    void aCheckpointWithoutItsTokenizerIsRefusedAsAUsageError() {
        // exit 2, as generate: the caller gave files that are not what the options need (it was 1)
        StringWriter err = new StringWriter();
        assertEquals(2, run(err, "--model", SharedModels.binFile().toString(), "--port", "0"));
        assertTrue(err.toString().contains("has no tokenizer inside"), err.toString());
    }
}
