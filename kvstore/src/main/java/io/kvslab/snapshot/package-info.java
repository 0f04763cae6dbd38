/**
 * Sequence snapshots: save one sequence, several, or every open sequence of a store to a file and restore them,
 * bitwise, into the same or another store ({@link io.kvslab.snapshot.Snapshots}). Files are written through
 * Chronicle Bytes memory-mapped {@code MappedBytes} and read with positional {@code FileChannel} reads (a file
 * truncated under a reader must not fault); the format (version 1) and the bounds a reader enforces are
 * specified in docs/snapshots.md and in {@link io.kvslab.snapshot.SnapshotFormat}.
 *
 * <p>Depends on {@code io.kvslab} (its raw block access, {@code io.kvslab.internal.table.RawBlocks}, not exported); the cache does
 * not depend on this package. Chronicle Bytes and the JVM flags it needs ({@code --add-opens=java.base/java.lang.reflect},
 * {@code --add-exports=java.base/sun.nio.ch}) are checked by every {@code Snapshots} method
 * (a {@link io.kvslab.snapshot.SnapshotException} with reason {@code PREREQUISITE}).
 */
package io.kvslab.snapshot;
