package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * Maps and unmaps slab memory straight from the OS ({@code mmap}/{@code munmap}; {@code malloc}/{@code free} where
 * there is no {@code mmap}).
 *
 * <p>Why not one {@link Arena} per slab: {@code Arena.allocate} zeroes every byte in Java (touching every page of a
 * slab up front, although every block write overwrites its rows and readers only read written rows), and closing a
 * shared arena makes the JVM handshake with every thread — milliseconds per slab, paid inside {@code compact()}.
 * Anonymous mappings come from the kernel already zero and are faulted in only where blocks are written; unmapping
 * involves no other thread. The segments are scoped to their allocator's one shared arena instead, so they become
 * unusable (rather than dangling) when the allocator closes; between a slab's unmapping and the allocator's close,
 * block memory is reached only under the lifetime locks of {@link SequenceTables} and {@link TableStore}, the same
 * locks that keep the native kernels (which read raw addresses) safe.
 *
 * <p>Transparent huge pages: on Linux a slab of at least one huge page is mapped aligned to the huge-page size and
 * {@code madvise(MADV_HUGEPAGE)}d, so machines whose THP mode is {@code madvise} (the common default) back it with
 * 2 MiB pages too. Decode attention reads 8-16 KiB blocks scattered over many slabs; with 4 KiB pages each block
 * costs several page walks (two-dimensional ones under a hypervisor), and with huge pages the walks all but
 * disappear (decode 5-15% faster at 32k tokens on the project's VM: docs/benchmarks.md, {@code decode5}). The cost:
 * the kernel faults and zeroes a whole huge page where a block is first written, so a slab's resident memory grows
 * in 2 MiB steps (at most one huge page per slab beyond its written blocks), and where THP's {@code defrag} mode is
 * {@code madvise} (the default) a first write may wait for the kernel to compact memory into a free huge page when
 * memory is fragmented. {@code -Dio.kvslab.hugePages=false}
 * turns it off; where THP is off or absent nothing changes (the advice is ignored).
 *
 * <p>A JVM that refuses native access ({@code --illegal-native-access=deny} without {@code --enable-native-access}
 * for KVSlab) cannot call {@code mmap}: each slab then comes from an {@link Arena#ofShared() Arena} of its own,
 * zeroed by Java and freed by closing that arena (the slower path the first paragraph avoids, but a working store,
 * as the kernels' Java fallback is a working attention).
 */
final class SlabMemory {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final boolean LINUX = System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux");
    private static final boolean MAC = System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("mac");
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE = 0x02;
    private static final int MAP_ANONYMOUS = LINUX ? 0x20 : 0x1000;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MALLOC;
    private static final MethodHandle FREE;
    private static final MethodHandle MADVISE;
    private static final int MADV_HUGEPAGE = 14;
    /** Huge-page size when slabs are to be huge-page aligned and advised, else 0 (see the class comment). */
    static final long HUGE_PAGE_BYTES;

    /** A slab allocated without native access (see the class comment) and the arena that frees it. */
    private record ArenaSlab(Arena arena, MemorySegment segment) { }

    /** Every live {@link ArenaSlab}, by start address; empty while slabs come from the OS. */
    private static final ConcurrentSkipListMap<Long, ArenaSlab> ARENA_SLABS = new ConcurrentSkipListMap<>();

    static {
        boolean mmap = (LINUX || MAC) && LIBC.find("mmap").isPresent() && LIBC.find("munmap").isPresent();
        MethodHandle mmapHandle = null;
        MethodHandle munmapHandle = null;
        MethodHandle mallocHandle = null;
        MethodHandle freeHandle = null;
        MethodHandle madviseHandle = null;
        try {
            mmapHandle = mmap ? LINKER.downcallHandle(LIBC.find("mmap").orElseThrow(), FunctionDescriptor.of(
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG)) : null;
            munmapHandle = mmap ? LINKER.downcallHandle(LIBC.find("munmap").orElseThrow(), FunctionDescriptor.of(
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG)) : null;
            mallocHandle = mmap ? null : LINKER.downcallHandle(LIBC.find("malloc").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            freeHandle = mmap ? null : LINKER.downcallHandle(LIBC.find("free").orElseThrow(),
                    FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG));
            madviseHandle = mmap && LINUX && LIBC.find("madvise").isPresent() ? LINKER.downcallHandle(
                    LIBC.find("madvise").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)) : null;
        } catch (IllegalCallerException denied) {
            // the JVM refuses native access to this module: every slab is an arena of its own (class comment)
            mmapHandle = munmapHandle = mallocHandle = freeHandle = madviseHandle = null;
        }
        MMAP = mmapHandle;
        MUNMAP = munmapHandle;
        MALLOC = mallocHandle;
        FREE = freeHandle;
        MADVISE = madviseHandle;
        HUGE_PAGE_BYTES = MADVISE != null && Boolean.parseBoolean(System.getProperty("io.kvslab.hugePages", "true"))
                ? transparentHugePageBytes() : 0;
    }

    /** Whether slabs come from the OS directly (else from an arena each: the JVM refuses native access). */
    static boolean mapsFromTheOs() {
        return MMAP != null || MALLOC != null;
    }

    /** The PMD huge-page size if THP is available and not "never" (2 MiB on x86-64, 512 MiB with 64 KiB base pages). */
    private static long transparentHugePageBytes() {
        try {
            Path dir = Path.of("/sys/kernel/mm/transparent_hugepage");
            if (Files.readString(dir.resolve("enabled")).contains("[never]")) {
                return 0;
            }
            long size = Long.parseLong(Files.readString(dir.resolve("hpage_pmd_size")).strip());
            return size > 0 && Long.bitCount(size) == 1 ? size : 0;
        } catch (IOException | RuntimeException e) {
            return 0;   // no THP in this kernel (or no sysfs): plain pages
        }
    }

    private SlabMemory() {}

    /**
     * Maps {@code bytes} of zeroed, page-aligned memory as a segment scoped to {@code scope}. Throws
     * {@link KvSlabException} when the OS refuses.
     */
    static MemorySegment map(long bytes, Arena scope) {
        if (!mapsFromTheOs()) {
            Arena own = Arena.ofShared();
            try {
                MemorySegment slab = own.allocate(bytes, 4096);
                ARENA_SLABS.put(slab.address(), new ArenaSlab(own, slab));
                return slab;
            } catch (OutOfMemoryError | RuntimeException e) {
                own.close();
                throw new KvSlabException("allocating a slab of " + bytes + " bytes failed: " + e);
            }
        }
        long huge = HUGE_PAGE_BYTES;
        long mapped = mappedBytes(bytes);
        boolean aligned = huge > 0 && bytes >= huge;
        long span = aligned ? Math.addExact(mapped, huge) : bytes;   // room to slide the start to a huge-page boundary
        long address;
        try {
            address = MMAP != null ? (long) MMAP.invokeExact(0L, span, PROT_READ_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0L) : (long) MALLOC.invokeExact(bytes);
        } catch (Throwable t) {
            throw new KvSlabException("mapping a slab of " + bytes + " bytes failed: " + t);
        }
        if (address == -1L || address == 0L) {
            throw new KvSlabException("the OS refused to map a slab of " + bytes + " bytes (out of memory)");
        }
        if (aligned) {
            try {
                address = alignToHugePages(address, mapped, huge);
            } catch (KvSlabException e) {
                unmapQuietly(address, span);   // whatever part of the fresh mapping is left, nobody holds it
                throw e;
            }
        }
        if (MMAP == null) {
            MemorySegment.ofAddress(address).reinterpret(bytes).fill((byte) 0);   // malloc does not zero
        }
        return MemorySegment.ofAddress(address).reinterpret(bytes, scope, null);
    }

    /**
     * The {@code bytes} of slab memory at {@code address} (a block address from a block table), as a segment. From
     * the OS that is a restricted {@code reinterpret}; without native access, a slice of the slab holding it.
     */
    static MemorySegment at(long address, long bytes) {
        if (mapsFromTheOs()) {
            return MemorySegment.ofAddress(address).reinterpret(bytes);
        }
        Map.Entry<Long, ArenaSlab> slab = ARENA_SLABS.floorEntry(address);
        if (slab == null || address - slab.getKey() + bytes > slab.getValue().segment().byteSize()) {
            throw new KvSlabException("no live slab holds " + bytes + " bytes at this block address");
        }
        return slab.getValue().segment().asSlice(address - slab.getKey(), bytes);
    }

    /**
     * {@code segment} (slab memory) with the lifetime of {@code scope}, read-only: a restricted {@code reinterpret}
     * where native access is allowed. Without it the segment keeps its slab's lifetime: it never dangles (the slab's
     * arena closes when the slab is freed) but stays readable after {@code scope} closes.
     */
    static MemorySegment readOnlyIn(MemorySegment segment, Arena scope) {
        return (mapsFromTheOs() ? segment.reinterpret(scope, null) : segment).asReadOnly();
    }

    /** Bytes of the mapping behind a slab of {@code bytes}: whole huge pages when it is huge-page aligned. */
    private static long mappedBytes(long bytes) {
        long huge = HUGE_PAGE_BYTES;
        return huge > 0 && bytes >= huge ? Math.addExact(bytes, huge - 1) & -huge : bytes;
    }

    /**
     * Of a fresh mapping of {@code mapped + huge} bytes at {@code address} (page-aligned), unmaps the part before
     * the first huge-page boundary and the part after {@code mapped} bytes from there (together {@code huge}
     * bytes, whole pages), advises the rest for huge pages and returns its start. The advice is best effort: a
     * kernel that refuses it leaves plain pages, which are correct, only slower to walk.
     */
    private static long alignToHugePages(long address, long mapped, long huge) {
        long start = (address + huge - 1) & -huge;
        long head = start - address;
        try {
            int rc = head > 0 ? (int) MUNMAP.invokeExact(address, head) : 0;
            if (rc == 0 && head < huge) {
                rc = (int) MUNMAP.invokeExact(start + mapped, huge - head);
            }
            if (rc != 0) {
                throw new KvSlabException("trimming a slab mapping to a huge-page boundary failed");
            }
            int advised = (int) MADVISE.invokeExact(start, mapped, MADV_HUGEPAGE);   // 0, or -1: plain pages
        } catch (KvSlabException e) {
            throw e;
        } catch (Throwable t) {
            throw new KvSlabException("trimming a slab mapping to a huge-page boundary failed: " + t);
        }
        return start;
    }

    /** Best-effort munmap of a failed fresh mapping (munmap of an already unmapped range is harmless). */
    private static void unmapQuietly(long address, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(address, bytes);
        } catch (Throwable t) {
            // the mapping failure is what the caller reports
        }
    }

    /** Returns a segment from {@link #map} to the OS; the segment must not be used afterwards. */
    static void unmap(MemorySegment segment) {
        if (!mapsFromTheOs()) {
            ArenaSlab own = ARENA_SLABS.remove(segment.address());
            if (own == null) {
                throw new KvSlabException("no slab of " + segment.byteSize() + " bytes at this address to free");
            }
            own.arena().close();
            return;
        }
        try {
            if (MUNMAP != null) {
                int rc = (int) MUNMAP.invokeExact(segment.address(), mappedBytes(segment.byteSize()));
                if (rc != 0) {
                    throw new KvSlabException("munmap of a " + segment.byteSize() + "-byte slab failed");
                }
            } else {
                FREE.invokeExact(segment.address());
            }
        } catch (KvSlabException e) {
            throw e;
        } catch (Throwable t) {
            throw new KvSlabException("unmapping a slab failed: " + t);
        }
    }
}
