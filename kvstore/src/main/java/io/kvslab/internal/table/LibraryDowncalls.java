package io.kvslab.internal.table;

import io.kvslab.KvSlabException;
import io.kvslab.internal.ffm.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Downcall handles of libkvslab for this package's bindings ({@link NativeAttention}, {@link NativeAppend}), from one
 * private lookup of the library file: {@link NativeLibrary} hands out no handles or lookups outside its package.
 * Callers bind in holder classes on first use and have checked that the library is available first.
 */
final class LibraryDowncalls {
    private LibraryDowncalls() {}

    /** Opened on first use. */
    private static final class Library {
        static final SymbolLookup LOOKUP = SymbolLookup.libraryLookup(NativeLibrary.libraryFile(), Arena.global());
    }

    static MethodHandle bind(String name, FunctionDescriptor d, Linker.Option... o) {
        MemorySegment symbol = Library.LOOKUP.find(name).orElseThrow(() ->
                new KvSlabException("symbol " + name + " not found in libkvslab.so; rebuild the native module"));
        return Linker.nativeLinker().downcallHandle(symbol, d, o);
    }
}
