package io.kvslab.internal.table;

import io.kvslab.KvSlabException;
import io.kvslab.internal.ffm.NativeLibrary;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The downcall of {@code kvs_append_rows}: one token's K and V rows of every KV head of a layer, copied into their
 * tail slots in one call. {@link SequenceTables#append} takes it for a one-token append of f16 tensors into an f16
 * store (generation's case, and {@code stress long}'s): sixteen 256-byte rows of Llama-3-8B into sixteen blocks whose
 * lines are cold. Java copies them with ordinary stores, each line read from memory before it is overwritten, one
 * row after the other; the native copy writes whole lines with non-temporal stores (see {@code append_rows.c}).
 *
 * <p>Package-private for the same reason as {@link NativeAttention}: the destination addresses cannot be checked
 * here, so only {@link SequenceTables} calls it, with the addresses of tail slots it reserved itself under the
 * sequence's write lock, after it checked every value. The sources are the caller's tensors, whose extent
 * {@link io.kvslab.KvTensor} checked at construction; the linker checks their liveness and thread.
 *
 * <p>Off (the Java copy) when the native library is unavailable or the system property
 * {@value #DISABLE_PROPERTY}{@code =true} is set (an A/B switch for measurements).
 */
final class NativeAppend {
    static final String DISABLE_PROPERTY = "kvslab.append.javaCopy";

    private NativeAppend() {}

    /** Read on first use: a store that never appends f16 tensors one token at a time never loads or binds it. */
    private static final class State {
        static final boolean ENABLED = !Boolean.getBoolean(DISABLE_PROPERTY) && NativeLibrary.isAvailable();
    }

    /** Bound on first use (each signature costs the linker a generated stub); critical: a few microseconds, and heap sources. */
    private static final class Copy {
        static final MethodHandle H = LibraryDowncalls.bind("kvs_append_rows", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG), Linker.Option.critical(true));
    }

    static boolean enabled() {
        return State.ENABLED;
    }

    /**
     * Copies, for every head h, {@code keyRowBytes} from {@code k} at byte {@code rows[4h]} to address
     * {@code rows[4h + 2]}, and {@code valueRowBytes} from {@code v} at {@code rows[4h + 1]} to {@code rows[4h + 3]}
     * ({@code rows}: a segment of longs, the caller's reused one, so that a call makes no object).
     */
    static void copy(MemorySegment k, MemorySegment v, MemorySegment rows, int heads, long keyRowBytes,
                     long valueRowBytes) {
        int rc;
        try {
            rc = (int) Copy.H.invokeExact(k, v, rows, heads, keyRowBytes, valueRowBytes);
        } catch (Throwable t) {
            throw t instanceof KvSlabException e ? e : new KvSlabException("kvs_append_rows failed: " + t, t);
        }
        if (rc != 0) {
            throw new KernelFailedException("kvs_append_rows", rc);
        }
    }
}
