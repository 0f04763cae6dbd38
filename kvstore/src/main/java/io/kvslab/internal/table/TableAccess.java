package io.kvslab.internal.table;

import io.kvslab.Sequence;

import java.util.function.Function;

/**
 * Lets internal packages ({@code io.kvslab.pod}) reach a {@link Sequence}'s tables without a public accessor on
 * the exported type (the JDK's "shared secrets" pattern). {@code Sequence}'s class initializer installs the
 * accessor; it can be installed once. Safe even if misused: {@link SequenceTables} guards every operation itself.
 */
public final class TableAccess {
    private static volatile Function<Sequence, SequenceTables> accessor;

    private TableAccess() {}

    public static synchronized void install(Function<Sequence, SequenceTables> f) {
        if (accessor != null) {
            throw new IllegalStateException("the table accessor is installed already");
        }
        accessor = f;
    }

    /** The tables of {@code s}. */
    public static SequenceTables of(Sequence s) {
        if (s == null) {
            throw new io.kvslab.KvArgumentException("sequence must not be null");
        }
        return accessor.apply(s);   // installed: an instance exists, so Sequence's initializer ran
    }
}
