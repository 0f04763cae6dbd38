package io.kvslab.internal.table;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Slab mappings: huge-page alignment where THP is available, every byte usable and zero, sizes of any kind. */
class SlabMemoryTest {

    /** THP's PMD size read independently of SlabMemory, or 0 where this kernel has none (or it is "never"). */
    private static long thpBytes() throws IOException {
        Path dir = Path.of("/sys/kernel/mm/transparent_hugepage");
        if (!Files.exists(dir.resolve("hpage_pmd_size"))
                || Files.readString(dir.resolve("enabled")).contains("[never]")) {
            return 0;
        }
        return Long.parseLong(Files.readString(dir.resolve("hpage_pmd_size")).strip());
    }

    @Test
    void hugePageSizeIsTheKernelsWhenEnabled() throws IOException {
        boolean linux = System.getProperty("os.name", "").toLowerCase().contains("linux");
        assertEquals(linux ? thpBytes() : 0, SlabMemory.HUGE_PAGE_BYTES);
    }

    @Test
    void largeSlabsStartOnAHugePageAndEveryByteIsZeroAndWritable() throws IOException {
        long huge = SlabMemory.HUGE_PAGE_BYTES;
        // a whole number of huge pages, a size that is not even a page multiple (q8_0 blocks: 4352 B x 3855), and
        // one below a huge page (plain mapping)
        for (long bytes : List.of(16L << 20, 4352L * 3855, 1L << 20, 4096L * 3 + 64)) {
            try (Arena scope = Arena.ofShared()) {
                MemorySegment slab = SlabMemory.map(bytes, scope);
                assertEquals(bytes, slab.byteSize());
                assertEquals(0, slab.address() % 4096, "page-aligned");
                if (huge > 0 && bytes >= huge) {
                    assertEquals(0, slab.address() % huge, "huge-page aligned: " + bytes);
                }
                for (long o = 0; o < bytes; o += 4096) {
                    assertEquals(0, slab.get(ValueLayout.JAVA_BYTE, o), "fresh memory is zero");
                    slab.set(ValueLayout.JAVA_LONG, o, o ^ 0x5a5a5a5a5a5a5a5aL);
                }
                slab.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 7);   // the very last byte belongs to the slab
                for (long o = 0; o < bytes; o += 4096) {
                    assertEquals(o ^ 0x5a5a5a5a5a5a5a5aL, slab.get(ValueLayout.JAVA_LONG, o));
                }
                assertEquals(7, slab.get(ValueLayout.JAVA_BYTE, bytes - 1));
                SlabMemory.unmap(slab);
            }
        }
    }

    @Test
    void manySlabsMapAndUnmapWithoutLeavingAddressSpaceBehind() throws IOException {
        // each map reserves a huge page more than it keeps; unmapping must return all of what it kept. 200 rounds of
        // 16 MiB would exhaust nothing either way, so compare the process's mapped size before and after instead.
        long before = vmSize();
        try (Arena scope = Arena.ofShared()) {
            for (int i = 0; i < 64; i++) {
                MemorySegment slab = SlabMemory.map(16L << 20, scope);
                slab.set(ValueLayout.JAVA_LONG, 0, i);
                SlabMemory.unmap(slab);
            }
        }
        long grown = vmSize() - before;
        // 64 leaked slabs (or leaked trims) would add >= 128 MiB; allow the JVM's own small growth meanwhile
        assertTrue(grown < 64L << 20, "VmSize grew by " + grown + " bytes");
    }

    private static long vmSize() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.exists(status)) {
            return 0;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("VmSize:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        return 0;
    }
}
