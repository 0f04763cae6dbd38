package io.kvslab.internal.table;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The probe really reads every 64-byte line it is given: its checksum is the sum of the buffer's 64-bit words. */
class BandwidthProbeTest {

    @Test
    void checksumIsTheSumOfAllWordsOfWholeLines() {
        try (Arena arena = Arena.ofConfined()) {
            // 3 MiB + 100 bytes: the probe rounds down to whole 64-byte lines and ignores the last 36 bytes
            long bytes = 3L * 1024 * 1024 + 100;
            MemorySegment buf = arena.allocate(bytes, 64);
            buf.fill((byte) 0x33); // the ignored tail is non-zero: reading it would change the sum
            long whole = bytes / 64 * 64;
            long expected = 0; // 20-bit words: the sum stays below 2^53, exact as a double and never wrapping
            for (long w = 0; w < whole / 8; w++) {
                long word = (w * 2654435761L) & 0xFFFFF;
                buf.set(JAVA_LONG_UNALIGNED, w * 8, word);
                expected += word;
            }
            for (int threads : new int[] {1, 2, 3}) {
                double sum = NativeAttention.readBandwidthProbe(buf, threads);
                assertEquals((double) expected, sum, "threads " + threads);
            }
        }
    }
}
