package io.kvslab.reliability;

import io.kvslab.Sequence;
import io.kvslab.internal.table.SlabAllocator;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Port of N_HandleLaundering, for every class at once: scans every public method and constructor of every public
 * class in kvstore's compiled classes (exported and internal packages alike, since a class-path host sees them
 * all) and fails listing each one that takes or returns a native handle type, a raw address or block handle, or a
 * block's memory.
 */
class PublicSurfaceTest {
    /** Types that launder restricted FFM operations or native code access. */
    private static final Set<Class<?>> NATIVE_HANDLE_TYPES = Set.of(MethodHandle.class, SymbolLookup.class,
            Linker.class, FunctionDescriptor.class, MethodHandles.Lookup.class, VarHandle.class);
    /** A long (or long[]) named like an address or handle. */
    private static final Pattern ADDRESS_NAME = Pattern.compile("(?i).*(address|handle|pointer).*");
    /**
     * Public methods that take a MemorySegment, each a caller-owned buffer checked for size and liveness, never a
     * block of the store.
     */
    private static final Set<String> CALLER_SEGMENTS = Set.of(
            "io.kvslab.internal.table.TableAttention.readBandwidthProbe(MemorySegment,int)",
            // a caller's own K/V tensor (heap or native), shape and strides checked against its size
            "io.kvslab.KvTensor.<init>(MemorySegment,DType,int,int,int,long,long,long)",
            "io.kvslab.KvTensor.data()",
            "io.kvslab.KvTensor.of(MemorySegment,DType,int,int,int)",
            // a caller's own query and output tensors, size-checked, never a block
            "io.kvslab.Attention.decode(Sequence,int,MemorySegment,MemorySegment)",
            "io.kvslab.Attention.prefill(Sequence,int,MemorySegment,int,MemorySegment)",
            "io.kvslab.internal.table.TableAttention.decode(SequenceTables,int,MemorySegment,MemorySegment)",
            "io.kvslab.internal.table.TableAttention.prefill(SequenceTables,int,MemorySegment,int,MemorySegment)",
            // a batch's query, output and lse tensors ([batch][heads][dim]), size-checked against the batch
            "io.kvslab.Attention.decodeBatch(int,List,MemorySegment,MemorySegment)",
            "io.kvslab.Attention.decodeBatch(int,List,MemorySegment,MemorySegment,MemorySegment)",
            "io.kvslab.internal.table.TableAttention.decodeBatch(List,Function,int,MemorySegment,MemorySegment,MemorySegment)",
            // the scoped read view: read-only block segments re-scoped to the view's own arena, so any use after
            // the view closes throws IllegalStateException (LayerViewTest); the sequence's read lock is held meanwhile
            "io.kvslab.LayerView.keyBlock(int,int)",
            "io.kvslab.LayerView.valueBlock(int,int)",
            "io.kvslab.internal.table.TableView.keyBlock(int,int)",
            "io.kvslab.internal.table.TableView.valueBlock(int,int)",
            // the runner's BLAS product over the caller's arrays, every size checked against n, cols and rows
            "io.kvslab.internal.ffm.KernelDowncalls.blasMatmulNt(MemorySegment,MemorySegment,MemorySegment,int,int,int)");
    /** SlabAllocator's public surface: statistics and lifecycle only. */
    private static final Set<String> ALLOCATOR_PUBLIC = Set.of("blockBytes", "blocksPerSlab", "relocationEpoch",
            "compact", "stats", "blocksByOccupancy", "liveBlocks", "liveBytes", "sizeClasses", "reservedBytes", "isClosed", "closeAndCountLive",
            "close");

    static List<Class<?>> kvstoreClasses() throws IOException, URISyntaxException, ClassNotFoundException {
        Path root = Path.of(Sequence.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<Class<?>> classes = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".class"))::iterator) {
                String name = root.relativize(p).toString().replace('/', '.').replaceAll("\\.class$", "");
                if (name.endsWith("module-info") || name.endsWith("package-info")) {
                    continue;
                }
                classes.add(Class.forName(name, false, PublicSurfaceTest.class.getClassLoader()));
            }
        }
        return classes;
    }

    static boolean reachable(Class<?> c) {
        for (Class<?> k = c; k != null; k = k.getEnclosingClass()) {
            if (!Modifier.isPublic(k.getModifiers())) {
                return false;
            }
        }
        return !c.isAnonymousClass() && !c.isLocalClass();
    }

    @Test
    void noPublicMethodTakesOrReturnsANativeHandleAnAddressOrABlock() throws Exception {
        List<Class<?>> classes = kvstoreClasses();
        assertTrue(classes.size() > 50, "scanned " + classes.size() + " classes");
        Set<String> offenders = new TreeSet<>();
        for (Class<?> c : classes) {
            if (!reachable(c)) {
                continue;
            }
            List<Executable> members = new ArrayList<>();
            for (Method m : c.getDeclaredMethods()) {
                if (Modifier.isPublic(m.getModifiers()) && !m.isSynthetic()) {
                    members.add(m);
                }
            }
            for (Constructor<?> k : c.getDeclaredConstructors()) {
                if (Modifier.isPublic(k.getModifiers())) {
                    members.add(k);
                }
            }
            for (Executable e : members) {
                String sig = signature(c, e);
                List<Class<?>> types = new ArrayList<>(List.of(e.getParameterTypes()));
                if (e instanceof Method m) {
                    types.add(m.getReturnType());
                }
                for (Class<?> t : types) {
                    Class<?> base = t.isArray() ? t.componentType() : t;
                    if (NATIVE_HANDLE_TYPES.contains(base)) {
                        offenders.add(sig + ": native handle type " + base.getSimpleName());
                    }
                    if (base == MemorySegment.class && !CALLER_SEGMENTS.contains(sig)) {
                        offenders.add(sig + ": MemorySegment in a public signature");
                    }
                }
                boolean longs = types.stream().anyMatch(t -> t == long.class || t == long[].class);
                if (longs && ADDRESS_NAME.matcher(e.getName()).matches()) {
                    offenders.add(sig + ": a long named like an address or handle");
                }
                if (c == SlabAllocator.class && e instanceof Method m && !ALLOCATOR_PUBLIC.contains(m.getName())) {
                    offenders.add(sig + ": allocator method outside its statistics and lifecycle surface");
                }
            }
        }
        assertEquals(Set.of(), offenders, "public methods exposing native access:\n" + String.join("\n", offenders));
    }

    @Test
    void nativeBindingClassesAreNotPublic() throws Exception {
        for (String name : List.of("io.kvslab.internal.table.NativeAttention", "io.kvslab.internal.table.NativeScratch",
                "io.kvslab.internal.table.BlockTable", "io.kvslab.internal.table.RowCodec")) {
            Class<?> c = Class.forName(name, false, getClass().getClassLoader());
            assertTrue(!Modifier.isPublic(c.getModifiers()), name + " must be package-private");
        }
    }

    private static String signature(Class<?> c, Executable e) {
        StringBuilder sb = new StringBuilder(c.getName()).append('.')
                .append(e instanceof Constructor ? "<init>" : e.getName()).append('(');
        Class<?>[] p = e.getParameterTypes();
        for (int i = 0; i < p.length; i++) {
            sb.append(i > 0 ? "," : "").append(p[i].getSimpleName());
        }
        return sb.append(')').toString();
    }
}
