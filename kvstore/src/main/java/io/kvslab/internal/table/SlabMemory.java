package io.kvslab.internal.table;

import io.kvslab.KvSlabException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

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

    static {
        boolean mmap = (LINUX || MAC) && LIBC.find("mmap").isPresent() && LIBC.find("munmap").isPresent();
        MMAP = mmap ? LINKER.downcallHandle(LIBC.find("mmap").orElseThrow(), FunctionDescriptor.of(
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG)) : null;
        MUNMAP = mmap ? LINKER.downcallHandle(LIBC.find("munmap").orElseThrow(), FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG)) : null;
        MALLOC = mmap ? null : LINKER.downcallHandle(LIBC.find("malloc").orElseThrow(), FunctionDescriptor.of(
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        FREE = mmap ? null : LINKER.downcallHandle(LIBC.find("free").orElseThrow(), FunctionDescriptor.ofVoid(
                ValueLayout.JAVA_LONG));
    }

    private SlabMemory() {}

    /**
     * Maps {@code bytes} of zeroed, page-aligned memory as a segment scoped to {@code scope}. Throws
     * {@link KvSlabException} when the OS refuses.
     */
    static MemorySegment map(long bytes, Arena scope) {
        long address;
        try {
            address = MMAP != null ? (long) MMAP.invokeExact(0L, bytes, PROT_READ_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0L) : (long) MALLOC.invokeExact(bytes);
        } catch (Throwable t) {
            throw new KvSlabException("mapping a slab of " + bytes + " bytes failed: " + t);
        }
        if (address == -1L || address == 0L) {
            throw new KvSlabException("the OS refused to map a slab of " + bytes + " bytes (out of memory)");
        }
        if (MMAP == null) {
            MemorySegment.ofAddress(address).reinterpret(bytes).fill((byte) 0);   // malloc does not zero
        }
        return MemorySegment.ofAddress(address).reinterpret(bytes, scope, null);
    }

    /** Returns a segment from {@link #map} to the OS; the segment must not be used afterwards. */
    static void unmap(MemorySegment segment) {
        try {
            if (MUNMAP != null) {
                int rc = (int) MUNMAP.invokeExact(segment.address(), segment.byteSize());
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
