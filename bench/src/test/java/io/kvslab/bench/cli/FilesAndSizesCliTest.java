package io.kvslab.bench.cli;

import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Review findings F4 and F3 at the command line: {@code serve} checks --model and --tokenizer as {@code generate}
 * does (a FIFO was opened and blocked forever; a missing file was exit 1), and a --chunk or --max-batch whose scratch
 * buffers would overflow a Java array (int overflow: an internal matmul message, IndexOutOfBounds, "-2147483648") is
 * a usage error naming the option, the model's dimension and the largest value that fits.
 */
class FilesAndSizesCliTest {
    @TempDir
    static Path dir;

    private record Run(int code, String err) {}

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Run(code, err.toString());
    }

    private static void assertUsage(Run r, String... parts) {
        assertEquals(2, r.code(), r.err());
        for (String p : parts) {
            assertTrue(r.err().contains(p), "stderr '" + r.err() + "' should mention '" + p + "'");
        }
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
    }

    static Path fifo(String name) throws IOException, InterruptedException {
        Path p = dir.resolve(name);
        int rc = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start().waitFor();
        Assumptions.assumeTrue(rc == 0 && Files.exists(p), "mkfifo is not available");
        return p;
    }

    @Test
    void serveRefusesAFifoOrAMissingFileBeforeOpeningItAsGenerateDoes() throws Exception {
        Path fifo = fifo("serve.fifo");
        String model = SharedModels.binFile().toString();
        String tok = SharedModels.tokenizerFile().toString();
        assertUsage(run("serve", "--model=" + fifo, "--tokenizer=" + tok, "--port=0"),
                "kvslab serve: --model: not a readable file: " + fifo + " (not a regular file");
        assertUsage(run("serve", "--model=" + model, "--tokenizer=" + fifo, "--port=0"),
                "--tokenizer: not a readable file: " + fifo);
        assertUsage(run("serve", "--model=" + dir.resolve("none.bin"), "--port=0"), "--model: no such file: ");
        assertUsage(run("serve", "--model=" + dir, "--tokenizer=" + tok, "--port=0"), "(a directory)");
        // the same cases in generate, for comparison
        assertUsage(run("generate", "--model=" + fifo, "--tokenizer=" + tok), "--model: not a readable file: " + fifo);
        assertUsage(run("generate", "--model=" + dir.resolve("none.bin")), "--model: no such file: ");
        // a checkpoint without its tokenizer: exit 2 in both
        assertUsage(run("serve", "--model=" + model, "--port=0"), "has no tokenizer inside");
        assertUsage(run("generate", "--model=" + model), "has no tokenizer inside");
    }

    /** A llama2.c checkpoint of zeros: dim 2, one head, one layer, vocab 512, seq_len 16 and the given hidden_dim. */
    private static Path wideCheckpoint(int hidden) throws IOException {
        Path p = dir.resolve("hidden" + hidden + ".bin");
        if (Files.exists(p)) {
            return p;
        }
        long dim = 2;
        long floats = 512 * dim + (2 * dim + 2 * dim * dim + 2 * dim * dim + 3 * dim * hidden) + dim + 16 * dim;
        try (FileChannel c = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
            h.putInt(2).putInt(hidden).putInt(1).putInt(1).putInt(1).putInt(512).putInt(16).flip();
            c.write(h);
            c.write(ByteBuffer.wrap(new byte[4]), 28 + 4 * floats - 4);
        }
        return p;
    }

    @Test
    void aChunkOrBatchOverflowingTheScratchBuffersIsAUsageErrorNamingTheOptionAndTheDimension() throws Exception {
        // hidden_dim 2^19: 4096 rows of it are 2^31 floats, one more than an int counts (the reviewer's "-2147483648")
        Path model = wideCheckpoint(1 << 19);
        String tok = SharedModels.tokenizerFile().toString();
        int most = (Integer.MAX_VALUE - 8) / (1 << 19);
        for (String matmul : new String[] {"java", "openblas"}) {
            assertUsage(run("generate", "--model=" + model, "--tokenizer=" + tok, "--steps=3", "--chunk=4096",
                            "--matmul=" + matmul),
                    "kvslab generate: --chunk 4096: 4096 tokens at once of a model with hidden_dim 524288 need "
                            + "buffers of 2147483648 floats, more than a Java array holds (2147483639); at most " + most
                            + " for this model");
        }
        assertUsage(run("serve", "--model=" + model, "--tokenizer=" + tok, "--port=0", "--max-batch=4096"),
                "kvslab serve: --max-batch 4096: 4096 tokens at once of a model with hidden_dim 524288", "at most "
                        + most);
    }
}
