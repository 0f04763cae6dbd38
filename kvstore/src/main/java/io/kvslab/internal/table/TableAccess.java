package io.kvslab.internal.table;

import io.kvslab.KvStore;
import io.kvslab.Sequence;

import java.util.function.Function;

/**
 * Lets internal packages ({@code io.kvslab.pod}) reach a {@link Sequence}'s tables without a public accessor on
 * the exported type (the JDK's "shared secrets" pattern). {@code Sequence}'s class initializer installs the
 * accessor; it can be installed once. Safe even if misused: {@link SequenceTables} guards every operation itself.
 */
public final class TableAccess {
    private static volatile Function<Sequence, SequenceTables> accessor;
    private static volatile Function<KvStore, TableStore> storeAccessor;

    private TableAccess() {}

    public static synchronized void install(Function<Sequence, SequenceTables> f) {
        if (accessor != null) {
            throw new IllegalStateException("the table accessor is installed already");
        }
        accessor = f;
    }

    /** Installed once by {@link KvStore}'s class initializer. */
    public static synchronized void installStore(Function<KvStore, TableStore> f) {
        if (storeAccessor != null) {
            throw new IllegalStateException("the store accessor is installed already");
        }
        storeAccessor = f;
    }

    /** The table store (allocator and store-wide lock) of {@code store}. */
    public static TableStore of(KvStore store) {
        if (store == null) {
            throw new io.kvslab.KvArgumentException("store must not be null");
        }
        return storeAccessor.apply(store);   // installed: an instance exists, so KvStore's initializer ran
    }

    /** The tables of {@code s}. */
    public static SequenceTables of(Sequence s) {
        if (s == null) {
            throw new io.kvslab.KvArgumentException("sequence must not be null");
        }
        return accessor.apply(s);   // installed: an instance exists, so Sequence's initializer ran
    }
}
