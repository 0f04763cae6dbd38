package io.kvslab.snapshot;

import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.internal.table.PayloadValues;
import io.kvslab.internal.table.RawBlocks;
import io.kvslab.Sequence;
import net.openhft.chronicle.bytes.MappedBytes;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32C;

/**
 * Writes snapshot files: gathers the block tables of the sequences, deduplicates shared blocks, writes a temp
 * file next to the target through a Chronicle {@link MappedBytes}, syncs it, then renames it over the target
 * atomically. A failure at any point deletes the temp file and leaves the target as it was.
 */
final class SnapshotWriter {
    /** Test seam: called after each block payload was written (a test throws here to simulate a crash). */
    interface Progress {
        Progress NONE = block -> { };

        void blockWritten(int block);
    }

    private static final long MIN_CHUNK = 64 * 1024;
    private static final long MAX_CHUNK = 64L << 20;

    private SnapshotWriter() {}

    /** Where each distinct block is read from: the table slot that stores the most rows of it. */
    private static final class BlockSource {
        final int index;
        final byte kind;
        int refs;
        int rows;
        int sequence;
        int layer;
        int head;
        int slot;

        BlockSource(int index, byte kind) {
            this.index = index;
            this.kind = kind;
        }
    }

    static SnapshotInfo write(List<Sequence> sequences, Path target, Progress progress) {
        KvStore store = checkSequences(sequences);
        KvLayout layout = store == null ? null : store.layout();
        if (target == null) {
            throw new KvArgumentException("target path must not be null");
        }
        if (layout == null) {
            throw new KvArgumentException("nothing to save: pass at least one sequence (use saveStore for a "
                    + "possibly empty store)");
        }
        return write(layout, sequences, target, progress);
    }

    static SnapshotInfo write(KvLayout layout, List<Sequence> sequences, Path target, Progress progress) {
        long largestBlock = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        if (largestBlock > SnapshotFormat.MAX_BLOCK_BYTES) {
            throw SnapshotException.unsuitable("cannot save snapshot " + target + ": blocks of " + largestBlock
                    + " bytes exceed the format's limit of " + SnapshotFormat.MAX_BLOCK_BYTES + " bytes per block");
        }

        // Tables and rows are read under each sequence's read lock, one (layer, head) or block at a time: a mutation
        // between two reads would mix two states, so the modification counts taken here must still hold after the
        // last row is read.
        int n = sequences.size();
        int[] modifications = new int[n];
        for (int i = 0; i < n; i++) {
            modifications[i] = RawBlocks.modifications(sequences.get(i));
        }
        try {
            return write(layout, sequences, target, progress, modifications);
        } catch (RuntimeException e) {
            // a concurrent mutation can also surface as a failed read (a block the table no longer has)
            throw mutatedMeanwhile(sequences, modifications, target, e);
        }
    }

    /** {@code failure} itself, unless a sequence changed since {@code modifications}: then the error that says so. */
    private static RuntimeException mutatedMeanwhile(List<Sequence> sequences, int[] modifications, Path target,
                                                     RuntimeException failure) {
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            if (RawBlocks.modifications(s) != modifications[i]) {
                ConcurrentUseException e = new ConcurrentUseException("cannot save snapshot " + target + ": sequence "
                        + s.id() + " was " + (s.isClosed() ? "closed" : "modified") + " by another thread while it "
                        + "was being saved; nothing was written. Save a sequence while no other thread appends to, "
                        + "evicts from or closes it");
                if (failure != null) {
                    e.initCause(failure);
                }
                return e;
            }
        }
        return failure;
    }

    private static SnapshotInfo write(KvLayout layout, List<Sequence> sequences, Path target, Progress progress,
                                      int[] modifications) {
        int layers = layout.layers();
        int kvHeads = layout.kvHeads();
        int tpb = layout.tokensPerBlock();
        long keyRowBytes = layout.keyRowBytes();
        long valueRowBytes = layout.valueRowBytes();
        long largestBlock = Math.max(layout.keyBlockBytes(), layout.valueBlockBytes());
        int version = layout.uniformDtype() ? SnapshotFormat.UNIFORM_VERSION : SnapshotFormat.VERSION;

        // 1. Gather tables and the distinct blocks they name.
        int n = sequences.size();
        long[] ids = new long[n];
        long[][][] positions = new long[n][layers * kvHeads][];
        int[][][] keyIndex = new int[n][layers * kvHeads][];
        int[][][] valueIndex = new int[n][layers * kvHeads][];
        Map<Long, BlockSource> blocks = new HashMap<>();
        List<BlockSource> order = new ArrayList<>();
        long rows = 0;
        for (int i = 0; i < n; i++) {
            Sequence s = sequences.get(i);
            ids[i] = s.id();
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    int t = l * kvHeads + h;
                    positions[i][t] = s.positions(l, h);
                    rows += positions[i][t].length;
                    int length = positions[i][t].length;
                    keyIndex[i][t] = index(RawBlocks.blockIds(s, l, h, true), SnapshotFormat.KIND_KEY, length,
                            tpb, i, l, h, blocks, order);
                    valueIndex[i][t] = index(RawBlocks.blockIds(s, l, h, false), SnapshotFormat.KIND_VALUE, length,
                            tpb, i, l, h, blocks, order);
                }
            }
        }

        // 2. Sizes.
        long tablesBytes = 0;
        for (int i = 0; i < n; i++) {
            tablesBytes += 8;
            for (int t = 0; t < layers * kvHeads; t++) {
                tablesBytes += 8 + 8L * positions[i][t].length + 8L * keyIndex[i][t].length;
            }
        }
        tablesBytes += SnapshotFormat.CRC_BYTES;
        long dataBytes = 0;
        int shared = 0;
        for (BlockSource b : order) {
            dataBytes += b.rows * (b.kind == SnapshotFormat.KIND_KEY ? keyRowBytes : valueRowBytes);
            shared += b.refs > 1 ? 1 : 0;
        }
        long tablesOffset = SnapshotFormat.HEADER_BYTES;
        long dataOffset = tablesOffset + tablesBytes;
        long directoryOffset = dataOffset + dataBytes;
        long directoryBytes = (long) SnapshotFormat.DIRECTORY_ENTRY_BYTES * order.size() + SnapshotFormat.CRC_BYTES;
        long total = directoryOffset + directoryBytes;
        long created = System.currentTimeMillis();

        // 3. Temp file, written through a memory map; header last.
        Path dir = target.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw SnapshotException.io("cannot save snapshot " + target + ": directory " + dir + " does not exist", null);
        }
        // The save renames its temporary file over the target: that would replace a device, FIFO or directory
        // entry itself (as root, /dev/zero became a snapshot file). Only a regular file, or nothing, is replaced.
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS)) {
            throw SnapshotException.io("cannot save snapshot " + target + ": it exists and is not a regular file (a "
                    + "device, FIFO, directory or link); a snapshot replaces only a regular file", null);
        }
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp-"
                + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        boolean moved = false;
        try {
            MappedBytes out = MappedBytes.mappedBytes(tmp.toFile(), chunkSize(total));
            try {
                out.write(new byte[SnapshotFormat.HEADER_BYTES], 0, SnapshotFormat.HEADER_BYTES);
                ChecksummedOutput tables = new ChecksummedOutput(out);
                for (int i = 0; i < n; i++) {
                    tables.putLong(ids[i]);
                    for (int t = 0; t < layers * kvHeads; t++) {
                        tables.putInt(positions[i][t].length);
                        tables.putInt(keyIndex[i][t].length);
                        for (long p : positions[i][t]) {
                            tables.putLong(p);
                        }
                        for (int b : keyIndex[i][t]) {
                            tables.putInt(b);
                        }
                        for (int b : valueIndex[i][t]) {
                            tables.putInt(b);
                        }
                    }
                }
                tables.finish();
                check(out.writePosition() == dataOffset, "table section size");

                long[] offsets = new long[order.size()];
                int[] crcs = new int[order.size()];
                byte[] buffer = new byte[(int) largestBlock];
                CRC32C crc = new CRC32C();
                for (BlockSource b : order) {
                    int len = (int) (b.rows * (b.kind == SnapshotFormat.KIND_KEY ? keyRowBytes : valueRowBytes));
                    boolean keys = b.kind == SnapshotFormat.KIND_KEY;
                    RawBlocks.readRows(sequences.get(b.sequence), b.layer, b.head, keys, b.slot, b.rows, buffer, 0);
                    // The reader refuses a non-finite value (append's rule), so a file holding one could never be
                    // restored: refuse it here, while the rows still exist. Append checks every value, but a caller
                    // that writes its buffer while the append copies it can still get one in.
                    int bad = PayloadValues.firstNonFinite(buffer, len, layout.dtype(keys), layout.headDim());
                    if (bad >= 0) {
                        throw SnapshotException.unsuitable("cannot save snapshot " + target + ": sequence "
                                + sequences.get(b.sequence).id() + ", layer " + b.layer + ", KV head " + b.head + " holds "
                                + PayloadValues.describe(buffer, 0, bad, layout.dtype(keys), layout.headDim())
                                + " (element " + bad + " of a " + (keys ? "K" : "V") + " block); a snapshot holds "
                                + "finite values only. Nothing was written");
                    }
                    crc.reset();
                    crc.update(buffer, 0, len);
                    crcs[b.index] = (int) crc.getValue();
                    offsets[b.index] = out.writePosition();
                    out.write(buffer, 0, len);
                    progress.blockWritten(b.index);
                }
                check(out.writePosition() == directoryOffset, "block data size");
                RuntimeException mutated = mutatedMeanwhile(sequences, modifications, target, null);
                if (mutated != null) {
                    throw mutated; // before the header and the rename: the target stays as it was
                }

                ChecksummedOutput directory = new ChecksummedOutput(out);
                for (BlockSource b : order) {
                    directory.putLong(offsets[b.index]);
                    directory.putInt(b.rows);
                    directory.putByte(b.kind);
                    directory.putByte((byte) 0);
                    directory.putByte((byte) 0);
                    directory.putByte((byte) 0);
                    directory.putInt(b.refs);
                    directory.putInt(crcs[b.index]);
                }
                directory.finish();
                check(out.writePosition() == total, "directory size");

                SnapshotFormat.Header header = new SnapshotFormat.Header(version,
                        SnapshotFormat.HEADER_BYTES, layers, layout.queryHeads(), kvHeads, layout.headDim(),
                        layout.keyDtype().code(), tpb, n, order.size(), tablesOffset, tablesBytes, dataOffset,
                        dataBytes, directoryOffset, directoryBytes, total, created, (int) keyRowBytes,
                        layout.valueDtype().code(), (int) valueRowBytes);
                byte[] head = header.encode();
                out.write(0L, head, 0, head.length);
            } finally {
                out.releaseLast();
            }
            // The map grew the file in whole chunks: cut it to the content, make it durable, then publish it.
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.truncate(total);
                ch.force(true);
            }
            move(tmp, target);
            moved = true;
            syncDirectory(dir);
        } catch (IOException e) {
            throw SnapshotException.io("cannot save snapshot " + target + ": " + e, e);
        } finally {
            if (!moved) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort: a leftover temp file never has the target's name
                }
            }
        }
        List<Long> idList = new ArrayList<>(n);
        for (long id : ids) {
            idList.add(id);
        }
        return new SnapshotInfo(version, layout, idList, rows, order.size(), shared, total, created);
    }

    private static int[] index(long[] handles, byte kind, int length, int tpb, int seq, int layer, int head,
                               Map<Long, BlockSource> blocks, List<BlockSource> order) {
        int[] idx = new int[handles.length];
        for (int b = 0; b < handles.length; b++) {
            BlockSource src = blocks.get(handles[b]);
            if (src == null) {
                src = new BlockSource(order.size(), kind);
                blocks.put(handles[b], src);
                order.add(src);
            } else if (src.kind != kind) {
                throw new KvSlabException("block " + handles[b] + " is used both as a K and a V block; "
                        + "snapshots cannot represent that");
            }
            src.refs++;
            int rowsHere = Math.min(tpb, length - b * tpb);
            if (rowsHere > src.rows) {
                src.rows = rowsHere;
                src.sequence = seq;
                src.layer = layer;
                src.head = head;
                src.slot = b;
            }
            idx[b] = src.index;
        }
        return idx;
    }

    /** The common store of the sequences (null for an empty list); rejects nulls, duplicates, closed ones. */
    static KvStore checkSequences(List<Sequence> sequences) {
        if (sequences == null) {
            throw new KvArgumentException("sequences must not be null");
        }
        KvStore store = null;
        Set<Sequence> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            if (s == null) {
                throw new KvArgumentException("sequences[" + i + "] is null");
            }
            if (s.isClosed()) {
                throw new KvArgumentException("sequence " + s.id() + " is closed; only open sequences can be saved");
            }
            if (!seen.add(s)) {
                throw new KvArgumentException("sequence " + s.id() + " is listed twice");
            }
            if (store == null) {
                store = s.store();
            } else if (s.store() != store) {
                throw new KvArgumentException("sequences of different stores cannot be saved in one snapshot");
            }
        }
        return store;
    }

    private static long chunkSize(long total) {
        long c = MIN_CHUNK;
        while (c < total && c < MAX_CHUNK) {
            c <<= 1;
        }
        return c;
    }

    private static void move(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw SnapshotException.io("cannot save snapshot " + target + ": the file system cannot rename "
                    + "atomically, so a crash could leave a partial file; save to a local file system", e);
        }
    }

    /** Makes the rename durable (POSIX: fsync the directory). Not supported everywhere; then best effort. */
    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Windows cannot open directories; the rename itself is still atomic
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("snapshot writer miscounted the " + what + " (a bug in KVSlab)");
        }
    }
}
