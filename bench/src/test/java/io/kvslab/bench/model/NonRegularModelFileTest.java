package io.kvslab.bench.model;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Review finding F4, in the library: {@link ModelFile#open} refuses anything but a regular file before opening it, so
 * no caller (serve skipped the CLI's check) can block forever opening a FIFO or read a device without end.
 */
class NonRegularModelFileTest {
    @TempDir
    Path dir;

    private static void assertMessage(Throwable e, String part) {
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should mention '" + part + "'");
    }

    @Test
    void aFifoADeviceAndADirectoryAreRefusedUnopened() throws Exception {
        Path fifo = dir.resolve("model.fifo");
        Assumptions.assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0, "no mkfifo");
        // the model and the tokenizer paths both go through ModelFile.open
        assertMessage(assertThrows(ModelFormatException.class, () -> LoadedModel.load(fifo, null)),
                fifo + ": is not a regular file (a FIFO, socket or device?); expected a model or tokenizer file");
        assertMessage(assertThrows(ModelFormatException.class,
                () -> LoadedModel.load(SharedModels.binFile(), fifo)), fifo + ": is not a regular file");
        Path dev = Path.of("/dev/null");
        if (Files.exists(dev) && !Files.isRegularFile(dev)) {   // a device (unless something replaced it)
            assertMessage(assertThrows(ModelFormatException.class, () -> LoadedModel.load(dev, null)),
                    "/dev/null: is not a regular file");
        }
        assertMessage(assertThrows(ModelFormatException.class, () -> LoadedModel.load(dir, null)),
                dir + ": is a directory; expected a model or tokenizer file");
        assertMessage(assertThrows(ModelFormatException.class, () -> LoadedModel.load(dir.resolve("none"), null)),
                "none: no such file");
    }
}
